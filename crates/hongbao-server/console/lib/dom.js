// DOM helpers: data only ever becomes text nodes or attribute values.

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.setAttribute('class', value);
    } else if (name === 'value' || name === 'checked') {
      el[name] = value; // properties, so they are the live values
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

/** Creates an HTML element: h('td', {class: 'num'}, 'text', node, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  return append(el, children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  return append(el, children);
}

/**
 * Replaces / adds children. Unlike the native methods (which would print
 * "null" or a joined array), null entries are skipped and arrays flattened.
 */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}
export const add = (el, ...children) => append(el, children);

export const byId = (id) => document.getElementById(id);

export function setText(el, text) {
  el.textContent = text == null ? '' : String(text);
}

/** Shows a message in an alert element, or hides it when text is empty. */
export function showAlert(el, text) {
  if (!el) return;
  setText(el, text || '');
  el.hidden = !text;
}

/** Class-name safe form of a value from the API. */
export function token(value) {
  return String(value == null ? '' : value).replace(/[^a-z0-9_-]/gi, '_');
}
