// Sign-in: the key is checked with one API call before it is kept.

import { t } from '../i18n.js';
import { state } from '../state.js';
import { api, errorText, session } from '../lib/api.js';
import { h, setText, showAlert } from '../lib/dom.js';

/** The sign-in screen; `onSignedIn` shows the console once the key is accepted. */
export function viewSignIn(view, onSignedIn) {
  const input = h('input', {
    id: 'api-key', type: 'password', autocomplete: 'off', autocapitalize: 'off',
    spellcheck: 'false', 'aria-describedby': 'sign-in-error',
  });
  const error = h('p', { id: 'sign-in-error', class: 'alert alert-error', role: 'alert' });
  showAlert(error, state.signInMessage ? t(state.signInMessage) : '');
  const button = h('button', { id: 'sign-in', type: 'submit', class: 'btn btn-primary' }, t('signIn.submit'));
  const form = h('form', { class: 'card signin', id: 'sign-in-form', novalidate: true },
    h('h1', null, t('signIn.title')),
    h('p', null, t('signIn.intro')),
    h('div', { class: 'field' }, h('label', { for: 'api-key' }, t('signIn.key')), input),
    error,
    button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      showAlert(error, t('signIn.empty'));
      input.focus();
      return;
    }
    button.disabled = true;
    setText(button, t('signIn.checking'));
    showAlert(error, '');
    try {
      // Any /v1 call checks the key; this one also gives the merchants.
      const merchants = await api('/v1/merchants', { key });
      session.set(key);
      state.merchants = merchants;
      state.signInMessage = null;
      if (!location.hash || location.hash === '#' || location.hash === '#/') {
        history.replaceState(null, '', '#/overview');
      }
      onSignedIn();
    } catch (err) {
      input.setAttribute('aria-invalid', 'true');
      showAlert(error, err.unauthorized ? t('signIn.refused') : errorText(err));
      button.disabled = false;
      setText(button, t('signIn.submit'));
      input.select();
    }
  });
  view.append(form);
  input.focus();
}
