/*
 * hongbao console: a dependency-free single-page app over the /v1 API.
 *
 * - The API key lives in sessionStorage only (gone when the tab closes) and
 *   travels in the Authorization header, never in a URL.
 * - Every piece of data reaches the DOM through textContent / text nodes
 *   (the `h` helper below); nothing is ever assigned to innerHTML.
 * - Money is integer fen end to end: parsed from yuan strings and formatted
 *   back with integer arithmetic, never through a float.
 * - Views poll while shown; leaving a view (hash change, sign-out, language
 *   switch) cancels its timers and makes its late answers no-ops.
 */
'use strict';

(() => {
  // =========================================================================
  // Dictionary: every visible label, in English and Chinese.
  // =========================================================================

  const I18N = {
    en: {
      'app.title': 'hongbao console',
      'brand': 'hongbao console',
      'nav.label': 'Sections',
      'nav.overview': 'Overview',
      'nav.payouts': 'Payouts',
      'nav.campaigns': 'Campaigns',
      'nav.prizes': 'Prizes',
      'lang.toggle': '中文',
      'lang.toggleTitle': '切换到中文',
      'signOut': 'Sign out',

      'signIn.title': 'Sign in',
      'signIn.intro': 'Enter your API key. It is kept in this browser tab only and forgotten when the tab is closed.',
      'signIn.key': 'API key',
      'signIn.submit': 'Sign in',
      'signIn.checking': 'Checking…',
      'signIn.empty': 'Enter an API key.',
      'signIn.refused': 'This API key was refused.',
      'signIn.expired': 'The API key is no longer accepted; sign in again.',

      'err.network': 'Could not reach the server ({detail}).',
      'err.http': 'The server answered HTTP {status}.',
      'loading': 'Loading…',
      'empty': 'Nothing to show.',
      'updatedAt': 'Updated {time}',
      'autoRefresh': 'Refreshes every {s} s',
      'yes': 'yes',
      'no': 'no',
      'pager.prev': '‹ Previous',
      'pager.next': 'Next ›',
      'pager.info': '{from}–{to} of {total}',
      'pager.none': '0 of 0',

      'col.status': 'Status',
      'col.count': 'Count',
      'col.amount': 'Amount',
      'col.created': 'Created',
      'col.merchant': 'Merchant',
      'col.openid': 'openid',
      'col.billno': 'mch_billno',
      'col.error': 'Error',
      'col.name': 'Name',
      'col.mchId': 'mch_id',
      'col.state': 'State',
      'col.reason': 'Reason',
      'col.errCode': 'err_code',
      'col.message': 'Message',
      'col.since': 'Since',
      'col.actions': 'Actions',
      'col.time': 'Time',
      'col.api': 'API',
      'col.outcome': 'Outcome',
      'col.latency': 'Latency',
      'col.detail': 'Detail',
      'col.rcvTime': 'Opened at',
      'col.line': 'Line',
      'col.field': 'Column',
      'col.progress': 'Progress',
      'col.rows': 'Rows',
      'col.total': 'Total',
      'col.paid': 'Paid',
      'col.failed': 'Failed',
      'col.open': 'To pay',
      'col.byStatus': 'By status',
      'col.type': 'Type',
      'col.range': 'Amount range',
      'col.budget': 'Budget',
      'col.committed': 'Committed',
      'col.budgetLeft': 'Budget left',
      'col.perUserDaily': 'Per user per day',
      'col.follow': 'Must follow',
      'col.prizes': 'Prizes by status',
      'col.activity': 'Activity',
      'col.user': 'User',
      'col.claimState': 'Claim state',
      'col.userMessage': 'What the user is told',
      'col.lastErr': 'Last err_code',
      'col.claims': 'Claims',
      'col.redpack': 'Red packet',

      'ov.title': 'Overview',
      'ov.today': 'Today',
      'ov.month': 'This month',
      'ov.tz': 'Days in {tz}',
      'ov.records': '{count} records',
      'ov.total': 'Total',
      'ov.chart': 'Amounts over time',
      'ov.hour': 'Hourly · 48 h',
      'ov.day': 'Daily · 30 days',
      'ov.chartNote': 'Amount of all records created in each period.',
      'ov.chartSum': '{count} records, {amount} in this range',
      'ov.chartEmpty': 'No records in this range.',
      'ov.chartLabel': 'Bar chart of amounts per period',
      'ov.statsError': 'Statistics are not available: {msg}',
      'ov.merchants': 'Merchants',
      'ov.noMerchants': 'This API key has no merchant.',
      'ov.balanceWarning': 'Insufficient balance: {names} paused. Top up the WeChat Pay merchant account, then press Resume.',
      'm.active': 'active',
      'm.paused': 'paused',
      'm.resume': 'Resume',
      'm.resuming': 'Resuming…',
      'reason.insufficient_balance': 'insufficient balance',
      'reason.daily_cap': 'daily cap reached',
      'reason.configuration': 'configuration error',
      'reason.operator': 'paused by an operator',

      'po.title': 'Payouts',
      'send.title': 'Send a red packet',
      'send.merchant': 'Merchant',
      'send.openid': 'Recipient openid',
      'send.amount': 'Amount (yuan)',
      'send.wishing': 'Wishing',
      'send.actName': 'Activity name',
      'send.remark': 'Remark',
      'send.default': 'the merchant\'s default',
      'send.submit': 'Send',
      'send.sending': 'Sending…',
      'send.hint': '1.00–200.00 yuan. The payout is stored before WeChat is called, and this form never pays the same submission twice.',
      'send.badAmount': 'Enter the amount in yuan with at most two decimals, e.g. 1.88.',
      'send.needOpenid': 'Enter the recipient\'s openid.',
      'filters.title': 'Filters',
      'f.status': 'Status',
      'f.all': 'All',
      'f.merchant': 'Merchant',
      'f.openid': 'openid',
      'f.billno': 'mch_billno',
      'f.campaign': 'Campaign id',
      'f.from': 'Created from (date)',
      'f.to': 'Created to (date, inclusive)',
      'f.apply': 'Apply',
      'f.reset': 'Reset',
      'po.list': 'Records',

      'd.title': 'Red packet',
      'd.back': '← Payouts',
      'd.record': 'Record',
      'd.polling': 'Refreshing every 2 s while pending or sending',
      'd.attempts': 'Calls to WeChat',
      'd.noAttempts': 'No call to WeChat yet.',
      'd.answer': 'WeChat\'s answer',
      'd.wechat': 'At WeChat',
      'd.wechatHint': 'Asks WeChat (gethbinfo) now and updates the record.',
      'd.refreshWechat': 'Refresh from WeChat',
      'd.querying': 'Asking WeChat…',
      'd.hblist': 'Opened by',
      'd.notFound': 'WeChat has no such order (yet).',
      'd.askedAt': 'Asked at {time}',
      'd.notAsked': 'Not asked yet: the values below are the record\'s.',
      'fld.id': 'ID',
      'fld.merchant': 'Merchant',
      'fld.type': 'Type',
      'fld.status': 'Status',
      'fld.mch_billno': 'mch_billno',
      'fld.re_openid': 'Recipient openid',
      'fld.total_amount': 'Amount',
      'fld.total_num': 'Packets',
      'fld.send_name': 'Sender name',
      'fld.wishing': 'Wishing',
      'fld.act_name': 'Activity name',
      'fld.remark': 'Remark',
      'fld.scene_id': 'Scene',
      'fld.send_listid': 'WeChat order (send_listid)',
      'fld.wechat_status': 'WeChat status',
      'fld.refund_amount': 'Refunded',
      'fld.err_code': 'err_code',
      'fld.message': 'Message',
      'fld.attempts': 'Send calls',
      'fld.campaign_id': 'Campaign',
      'fld.prize_id': 'Prize',
      'fld.created_at': 'Created',
      'fld.updated_at': 'Updated',
      'fld.mini_program': 'Mini program arguments',
      'w.status': 'WeChat status',
      'w.detail_id': 'detail_id',
      'w.send_type': 'Send type',
      'w.hb_type': 'Packet type',
      'w.total_num': 'Packets',
      'w.total_amount': 'Amount',
      'w.reason': 'Reason',
      'w.send_time': 'Sent at',
      'w.refund_time': 'Refunded at',
      'w.refund_amount': 'Refund amount',

      'c.title': 'Campaigns',
      'c.back': '← Campaigns',
      'c.upload': 'Upload a campaign',
      'c.name': 'Name',
      'c.merchant': 'Merchant',
      'c.file': 'CSV file',
      'c.amount': 'Amount per row (yuan, optional)',
      'c.allowRepeat': 'Allow an openid on several rows',
      'c.dryRun': 'Check only (store nothing)',
      'c.submit': 'Upload',
      'c.uploading': 'Uploading…',
      'c.fileHint': 'CSV in UTF-8 with a header: openid,amount (yuan) or openid,total_amount (fen); optional wishing, act_name, remark, scene_id. The whole file is checked first: with any bad row nothing is stored or paid.',
      'c.needFile': 'Choose a CSV file.',
      'c.needName': 'Enter the campaign\'s name.',
      'c.badAmount': 'The amount must be yuan with at most two decimals, e.g. 1.88.',
      'c.rowsShown': 'Showing the first {shown} of {total} bad rows.',
      'c.repeatHint': 'tick “{option}”',
      'c.dryRunOk': 'The file is valid: {rows} rows, {amount} in all. Nothing was stored.',
      'c.list': 'All campaigns',
      'c.none': 'No campaign yet.',
      'c.progress': '{paid} / {total} paid',
      'c.progressFailed': '{paid} / {total} paid, {failed} failed',
      'c.pause': 'Pause',
      'c.resume': 'Resume',
      'c.report': 'Download report',
      'c.payouts': 'Show its payouts',
      'c.polling': 'Refreshing every 2 s until done',
      'c.merchantPaused': 'The merchant is paused: {msg}',
      'c.operatorPaused': 'This campaign is paused: its remaining rows wait until it is resumed.',
      'c.byStatus': 'By status',
      'c.errCodes': 'Failures by err_code',
      'c.noFailures': 'No failure.',
      'c.rows': 'Rows',
      'c.imported': 'Imported',
      'c.totalAmount': 'Total',
      'c.paid': 'Paid',
      'c.failed': 'Failed',
      'c.open': 'Still to pay',
      'c.sha': 'File SHA-256',
      'c.id': 'ID',

      'p.title': 'Prizes',
      'p.activities': 'Activities',
      'p.noActivities': 'No activity yet.',
      'p.prizes': 'Prizes',
      'p.activity': 'Activity',
      'p.allActivities': 'All activities',
      'p.user': 'User reference',
      'p.status': 'Claim state',
      'p.noLimit': 'none',
      'p.noPrizes': 'No prize matches.',

      'type.normal': 'normal',
      'type.group': 'group (fission)',
      'type.miniprogram': 'mini program',
      'ptype.cash_redpack': 'cash red packet',
      'ptype.coupon': 'coupon',
      'ptype.points': 'points',
      'ptype.goods': 'goods',
      'ptype.other': 'other',

      // Status labels: in English, the API's own words.
      'st.record.pending': 'pending',
      'st.record.sending': 'sending',
      'st.record.sent': 'sent',
      'st.record.received': 'received',
      'st.record.refunding': 'refunding',
      'st.record.refunded': 'refunded',
      'st.record.failed': 'failed',
      'st.campaign.importing': 'importing',
      'st.campaign.running': 'running',
      'st.campaign.paused': 'paused',
      'st.campaign.done': 'done',
      'st.prize.pending': 'pending (claimable)',
      'st.prize.issuing': 'issuing',
      'st.prize.issued': 'issued',
      'st.prize.failed': 'failed',
    },

    zh: {
      'app.title': '红包控制台',
      'brand': '红包控制台',
      'nav.label': '栏目',
      'nav.overview': '概览',
      'nav.payouts': '发放记录',
      'nav.campaigns': '批量发放',
      'nav.prizes': '奖品',
      'lang.toggle': 'English',
      'lang.toggleTitle': 'Switch to English',
      'signOut': '退出登录',

      'signIn.title': '登录',
      'signIn.intro': '请输入 API 密钥。密钥只保存在当前浏览器标签页中，关闭标签页后即被清除。',
      'signIn.key': 'API 密钥',
      'signIn.submit': '登录',
      'signIn.checking': '正在验证…',
      'signIn.empty': '请输入 API 密钥。',
      'signIn.refused': '该 API 密钥无效。',
      'signIn.expired': 'API 密钥已不再有效，请重新登录。',

      'err.network': '无法连接服务器（{detail}）。',
      'err.http': '服务器返回 HTTP {status}。',
      'loading': '加载中…',
      'empty': '暂无数据。',
      'updatedAt': '更新于 {time}',
      'autoRefresh': '每 {s} 秒自动刷新',
      'yes': '是',
      'no': '否',
      'pager.prev': '‹ 上一页',
      'pager.next': '下一页 ›',
      'pager.info': '第 {from}–{to} 条，共 {total} 条',
      'pager.none': '共 0 条',

      'col.status': '状态',
      'col.count': '笔数',
      'col.amount': '金额',
      'col.created': '创建时间',
      'col.merchant': '商户',
      'col.openid': 'openid',
      'col.billno': '商户订单号',
      'col.error': '错误',
      'col.name': '名称',
      'col.mchId': '商户号',
      'col.state': '状态',
      'col.reason': '原因',
      'col.errCode': '错误码',
      'col.message': '说明',
      'col.since': '暂停时间',
      'col.actions': '操作',
      'col.time': '时间',
      'col.api': '接口',
      'col.outcome': '结果',
      'col.latency': '耗时',
      'col.detail': '详情',
      'col.rcvTime': '领取时间',
      'col.line': '行号',
      'col.field': '列',
      'col.progress': '进度',
      'col.rows': '行数',
      'col.total': '总金额',
      'col.paid': '已发放',
      'col.failed': '失败',
      'col.open': '待发放',
      'col.byStatus': '按状态',
      'col.type': '类型',
      'col.range': '金额范围',
      'col.budget': '预算',
      'col.committed': '已占用',
      'col.budgetLeft': '剩余预算',
      'col.perUserDaily': '每人每日上限',
      'col.follow': '需关注公众号',
      'col.prizes': '奖品状态',
      'col.activity': '活动',
      'col.user': '用户',
      'col.claimState': '领取状态',
      'col.userMessage': '用户看到的提示',
      'col.lastErr': '最近错误码',
      'col.claims': '领取次数',
      'col.redpack': '红包',

      'ov.title': '概览',
      'ov.today': '今日',
      'ov.month': '本月',
      'ov.tz': '按 {tz} 计日',
      'ov.records': '{count} 笔',
      'ov.total': '合计',
      'ov.chart': '金额趋势',
      'ov.hour': '按小时 · 48 小时',
      'ov.day': '按天 · 30 天',
      'ov.chartNote': '每个时段内创建的全部记录的金额。',
      'ov.chartSum': '该区间共 {count} 笔，{amount}',
      'ov.chartEmpty': '该区间没有记录。',
      'ov.chartLabel': '各时段金额柱状图',
      'ov.statsError': '统计数据不可用：{msg}',
      'ov.merchants': '商户',
      'ov.noMerchants': '该 API 密钥没有商户。',
      'ov.balanceWarning': '余额不足：商户 {names} 已暂停发放。请为微信支付商户号充值，然后点击“恢复”。',
      'm.active': '正常',
      'm.paused': '已暂停',
      'm.resume': '恢复',
      'm.resuming': '正在恢复…',
      'reason.insufficient_balance': '余额不足',
      'reason.daily_cap': '已达每日上限',
      'reason.configuration': '配置错误',
      'reason.operator': '操作员暂停',

      'po.title': '发放记录',
      'send.title': '发放红包',
      'send.merchant': '商户',
      'send.openid': '接收者 openid',
      'send.amount': '金额（元）',
      'send.wishing': '祝福语',
      'send.actName': '活动名称',
      'send.remark': '备注',
      'send.default': '留空则使用商户的默认值',
      'send.submit': '发放',
      'send.sending': '正在提交…',
      'send.hint': '金额 1.00–200.00 元。记录在调用微信之前保存，同一次提交绝不会重复发放。',
      'send.badAmount': '请输入以元为单位、最多两位小数的金额，例如 1.88。',
      'send.needOpenid': '请输入接收者的 openid。',
      'filters.title': '筛选',
      'f.status': '状态',
      'f.all': '全部',
      'f.merchant': '商户',
      'f.openid': 'openid',
      'f.billno': '商户订单号',
      'f.campaign': '批量发放 ID',
      'f.from': '创建日期起',
      'f.to': '创建日期止（含当天）',
      'f.apply': '筛选',
      'f.reset': '重置',
      'po.list': '记录',

      'd.title': '红包',
      'd.back': '← 发放记录',
      'd.record': '记录',
      'd.polling': '待发送或发送中时每 2 秒刷新',
      'd.attempts': '微信调用记录',
      'd.noAttempts': '尚未调用微信。',
      'd.answer': '微信应答',
      'd.wechat': '微信侧状态',
      'd.wechatHint': '立即向微信查询（gethbinfo）并更新记录。',
      'd.refreshWechat': '向微信查询',
      'd.querying': '正在查询微信…',
      'd.hblist': '领取明细',
      'd.notFound': '微信（暂时）没有该订单。',
      'd.askedAt': '查询于 {time}',
      'd.notAsked': '尚未查询：以下为记录中的值。',
      'fld.id': 'ID',
      'fld.merchant': '商户',
      'fld.type': '类型',
      'fld.status': '状态',
      'fld.mch_billno': '商户订单号',
      'fld.re_openid': '接收者 openid',
      'fld.total_amount': '金额',
      'fld.total_num': '红包个数',
      'fld.send_name': '发送者名称',
      'fld.wishing': '祝福语',
      'fld.act_name': '活动名称',
      'fld.remark': '备注',
      'fld.scene_id': '场景',
      'fld.send_listid': '微信单号（send_listid）',
      'fld.wechat_status': '微信状态',
      'fld.refund_amount': '退款金额',
      'fld.err_code': '错误码',
      'fld.message': '说明',
      'fld.attempts': '发送调用次数',
      'fld.campaign_id': '批量发放',
      'fld.prize_id': '奖品',
      'fld.created_at': '创建时间',
      'fld.updated_at': '更新时间',
      'fld.mini_program': '小程序参数',
      'w.status': '微信状态',
      'w.detail_id': '红包单号',
      'w.send_type': '发放类型',
      'w.hb_type': '红包类型',
      'w.total_num': '红包个数',
      'w.total_amount': '金额',
      'w.reason': '失败原因',
      'w.send_time': '发送时间',
      'w.refund_time': '退款时间',
      'w.refund_amount': '退款金额',

      'c.title': '批量发放',
      'c.back': '← 批量发放',
      'c.upload': '上传批量发放',
      'c.name': '名称',
      'c.merchant': '商户',
      'c.file': 'CSV 文件',
      'c.amount': '每行金额（元，可选）',
      'c.allowRepeat': '允许同一 openid 出现在多行',
      'c.dryRun': '仅校验（不保存）',
      'c.submit': '上传',
      'c.uploading': '正在上传…',
      'c.fileHint': 'UTF-8 编码的 CSV，带表头：openid,amount（元）或 openid,total_amount（分）；可选列 wishing、act_name、remark、scene_id。先校验整个文件：只要有一行有误，就不保存也不发放任何一行。',
      'c.needFile': '请选择 CSV 文件。',
      'c.needName': '请输入批量发放的名称。',
      'c.badAmount': '金额必须以元为单位，最多两位小数，例如 1.88。',
      'c.rowsShown': '显示 {total} 行错误中的前 {shown} 行。',
      'c.repeatHint': '勾选“{option}”',
      'c.dryRunOk': '文件校验通过：共 {rows} 行，合计 {amount}。未保存任何数据。',
      'c.list': '全部批量发放',
      'c.none': '暂无批量发放。',
      'c.progress': '已发放 {paid} / {total}',
      'c.progressFailed': '已发放 {paid} / {total}，失败 {failed}',
      'c.pause': '暂停',
      'c.resume': '恢复',
      'c.report': '下载报告',
      'c.payouts': '查看发放记录',
      'c.polling': '每 2 秒刷新，直到完成',
      'c.merchantPaused': '商户已暂停：{msg}',
      'c.operatorPaused': '该批量发放已暂停：剩余的行将在恢复后继续发放。',
      'c.byStatus': '按状态',
      'c.errCodes': '按错误码统计的失败',
      'c.noFailures': '没有失败。',
      'c.rows': '行数',
      'c.imported': '已导入',
      'c.totalAmount': '总金额',
      'c.paid': '已发放',
      'c.failed': '失败',
      'c.open': '待发放',
      'c.sha': '文件 SHA-256',
      'c.id': 'ID',

      'p.title': '奖品',
      'p.activities': '活动',
      'p.noActivities': '暂无活动。',
      'p.prizes': '奖品',
      'p.activity': '活动',
      'p.allActivities': '全部活动',
      'p.user': '用户标识',
      'p.status': '领取状态',
      'p.noLimit': '不限',
      'p.noPrizes': '没有符合条件的奖品。',

      'type.normal': '普通红包',
      'type.group': '裂变红包',
      'type.miniprogram': '小程序红包',
      'ptype.cash_redpack': '现金红包',
      'ptype.coupon': '优惠券',
      'ptype.points': '积分',
      'ptype.goods': '实物',
      'ptype.other': '其他',

      'st.record.pending': '待发送',
      'st.record.sending': '发送中',
      'st.record.sent': '已发送',
      'st.record.received': '已领取',
      'st.record.refunding': '退款中',
      'st.record.refunded': '已退款',
      'st.record.failed': '失败',
      'st.campaign.importing': '导入中',
      'st.campaign.running': '发放中',
      'st.campaign.paused': '已暂停',
      'st.campaign.done': '已完成',
      'st.prize.pending': '待领取',
      'st.prize.issuing': '发放中',
      'st.prize.issued': '已发放',
      'st.prize.failed': '失败',
    },
  };

  const RECORD_STATUSES = ['pending', 'sending', 'sent', 'received', 'refunding', 'refunded', 'failed'];
  const PRIZE_STATUSES = ['pending', 'issuing', 'issued', 'failed'];
  const PAGE_SIZE = 20;
  const KEY_STORE = 'hongbao.apiKey'; // sessionStorage
  const LANG_STORE = 'hongbao.lang'; // localStorage

  // =========================================================================
  // State that outlives a single view (drafts survive a language switch).
  // =========================================================================

  const state = {
    lang: initialLang(),
    merchants: [],
    signInMessage: null, // a dictionary key shown on the sign-in screen
    bucket: 'hour',
    // Texts start empty: left empty, the merchant's configured defaults apply.
    send: { merchant: '', openid: '', amount: '', wishing: '', act_name: '', remark: '' },
    sendKey: null, // the Idempotency-Key of the submission being made
    payoutFilters: emptyPayoutFilters(), // as typed in the form
    payoutApplied: emptyPayoutFilters(), // as last applied: what the table shows
    payoutOffset: 0,
    campaignDraft: { name: '', merchant: '', amount: '', allowRepeat: false, dryRun: false },
    prizeFilters: { activity: '', user: '', status: '' }, // as typed
    prizeApplied: { activity: '', user: '', status: '' }, // as applied
    prizeOffset: 0,
  };

  function emptyPayoutFilters() {
    return { status: '', merchant: '', re_openid: '', mch_billno: '', campaign_id: '', from: '', to: '' };
  }

  function initialLang() {
    try {
      const saved = localStorage.getItem(LANG_STORE);
      if (saved === 'en' || saved === 'zh') return saved;
    } catch (_) { /* storage disabled */ }
    return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }

  /** A label in the current language; `{name}` placeholders filled from vars. */
  function t(key, vars) {
    let text = I18N[state.lang][key];
    if (text === undefined) text = I18N.en[key];
    if (text === undefined) text = key;
    if (vars) text = text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return text;
  }

  /** A label that may be missing (e.g. an unknown status): the raw value then. */
  function label(prefix, value) {
    if (value == null) return '—';
    const key = `${prefix}.${value}`;
    return key in I18N[state.lang] ? I18N[state.lang][key] : String(value);
  }

  // =========================================================================
  // DOM helpers: data only ever becomes text nodes or attribute values.
  // =========================================================================

  function append(el, children) {
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
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  /**
   * Replaces / adds children. Unlike the native methods (which would print
   * "null" or a joined array), null entries are skipped and arrays flattened.
   */
  function fill(el, ...children) {
    el.replaceChildren();
    return append(el, children);
  }
  const add = (el, ...children) => append(el, children);

  const byId = (id) => document.getElementById(id);

  function setText(el, text) {
    el.textContent = text == null ? '' : String(text);
  }

  /** Shows a message in an alert element, or hides it when text is empty. */
  function showAlert(el, text) {
    if (!el) return;
    setText(el, text || '');
    el.hidden = !text;
  }

  /** Class-name safe form of a value from the API. */
  function token(value) {
    return String(value == null ? '' : value).replace(/[^a-z0-9_-]/gi, '_');
  }

  function statusBadge(kind, status, id) {
    return h('span', {
      class: `status status-${token(status)}`,
      'data-status': status == null ? '' : String(status),
      id,
    }, label(`st.${kind}`, status));
  }

  /** Updates a status badge in place (keeps the element, and its id). */
  function updateBadge(el, kind, status) {
    el.className = `status status-${token(status)}`;
    el.dataset.status = status == null ? '' : String(status);
    setText(el, label(`st.${kind}`, status));
  }

  const dash = () => h('span', { class: 'muted' }, '—');
  const mono = (text) => (text == null || text === '' ? dash() : h('span', { class: 'mono' }, text));

  function tableWrap(table) {
    return h('div', { class: 'table-wrap' }, table);
  }

  function thead(keys) {
    return h('thead', null, h('tr', null, keys.map((k) => {
      const [key, cls] = Array.isArray(k) ? k : [k, null];
      return h('th', { class: cls, scope: 'col' }, key ? t(key) : '');
    })));
  }

  function emptyRow(colspan, text) {
    return h('tr', { class: 'empty' }, h('td', { colspan }, text));
  }

  /**
   * Puts one row per item into tbody, keyed by `data-id`, reusing the rows
   * (and cells) that did not change: auto-refresh then leaves the DOM, the
   * text selection and a test driver's element references alone.
   * `cells(item)` returns [[signature, () => content, className], ...].
   */
  function syncRows(tbody, items, cells, onRowClick) {
    const existing = new Map();
    for (const tr of tbody.querySelectorAll('tr[data-id]')) existing.set(tr.dataset.id, tr);
    const rows = items.map((item) => {
      let tr = existing.get(item.id);
      if (!tr) {
        tr = h('tr', { 'data-id': item.id });
        if (onRowClick) {
          tr.classList.add('clickable');
          tr.addEventListener('click', (e) => {
            // Links, buttons and text selections keep their own behaviour.
            if (e.target.closest('a, button, summary, details')) return;
            if (String(window.getSelection() || '')) return;
            onRowClick(tr.dataset.id);
          });
        }
      }
      patchCells(tr, cells(item));
      return tr;
    });
    tbody.replaceChildren(...rows);
  }

  function patchCells(tr, cells) {
    while (tr.cells.length < cells.length) tr.append(h('td'));
    while (tr.cells.length > cells.length) tr.lastChild.remove();
    cells.forEach(([sig, build, cls], i) => {
      const td = tr.cells[i];
      const signature = `${state.lang}|${JSON.stringify(sig)}`;
      if (td.dataset.sig === signature) return;
      td.replaceChildren();
      append(td, [build()]);
      td.className = cls || '';
      td.dataset.sig = signature;
    });
  }

  // =========================================================================
  // Money and time.
  // =========================================================================

  /** Integer fen as "¥1,234.56", with integer arithmetic only. */
  function yuan(fen) {
    if (fen == null || fen === '') return '—';
    const n = Number(fen);
    if (!Number.isSafeInteger(n)) return String(fen);
    const abs = Math.abs(n);
    const cents = abs % 100;
    const whole = (abs - cents) / 100; // exact: abs - cents is a multiple of 100
    const grouped = String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return `${n < 0 ? '-' : ''}¥${grouped}.${String(cents).padStart(2, '0')}`;
  }

  /** Yuan text ("1.88", "5", "¥2.5") to integer fen, or null. No floats. */
  function parseYuan(text) {
    const m = /^(\d{1,9})(?:\.(\d{0,2}))?$/.exec(String(text).trim().replace(/^[¥￥]\s*/, ''));
    if (!m) return null;
    return parseInt(m[1], 10) * 100 + parseInt((m[2] || '').padEnd(2, '0'), 10);
  }

  /** Fen back to a plain yuan string ("1.88") for an API that wants yuan. */
  function fenToYuanString(fen) {
    const cents = fen % 100;
    return `${(fen - cents) / 100}.${String(cents).padStart(2, '0')}`;
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  /** An RFC 3339 time as "YYYY-MM-DD HH:MM:SS" in the browser's time zone. */
  function localTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} `
      + `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  /** A time element: local time shown, the UTC original as its tooltip. */
  function timeEl(iso) {
    if (!iso) return dash();
    return h('time', { datetime: iso, title: iso, class: 'nowrap' }, localTime(iso));
  }

  /** WeChat writes times in Beijing time without a zone: shown locally too. */
  function beijingTimeEl(text) {
    if (!text) return dash();
    const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})$/.exec(String(text).trim());
    return m ? timeEl(`${m[1]}T${m[2]}+08:00`) : h('span', null, text);
  }

  /** A local calendar date (input type=date) to an RFC 3339 UTC instant. */
  function localDateToRfc3339(date, addDays) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
    if (!m) return '';
    const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (addDays || 0));
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  // =========================================================================
  // Session and API client.
  // =========================================================================

  const session = {
    key() {
      try { return sessionStorage.getItem(KEY_STORE); } catch (_) { return null; }
    },
    set(key) { sessionStorage.setItem(KEY_STORE, key); },
    clear() {
      try { sessionStorage.removeItem(KEY_STORE); } catch (_) { /* ignore */ }
    },
  };

  class ApiError extends Error {
    constructor(status, body, detail) {
      super(detail || `HTTP ${status}`);
      this.status = status; // 0: no answer
      this.body = body; // the parsed JSON answer, if any
      this.detail = detail;
      this.unauthorized = status === 401;
    }

    /** The API's `error` object, if the answer had one. */
    get error() {
      return this.body && typeof this.body === 'object' ? this.body.error || null : null;
    }
  }

  /**
   * The message to show for an error, in the current language: the API's
   * `message` or `zh_message`, after the field at fault unless `bare`.
   */
  function errorText(err, bare) {
    if (err instanceof ApiError) {
      const e = err.error;
      if (e) {
        const msg = state.lang === 'zh' ? e.zh_message || e.message : e.message || e.zh_message;
        return e.field && !bare ? `${e.field}: ${msg}` : String(msg);
      }
      if (err.status === 0) return t('err.network', { detail: err.detail || 'network' });
      return t('err.http', { status: err.status });
    }
    return String((err && err.message) || err);
  }

  function queryString(query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) {
      if (v == null || v === '') continue;
      params.append(k, String(v));
    }
    const text = params.toString();
    return text ? `?${text}` : '';
  }

  /**
   * Calls the API. Answers the parsed JSON (or the Response with `raw`);
   * throws ApiError otherwise. A 401 while signed in signs out: the key was
   * revoked or rotated. `key` overrides the stored key (sign-in check).
   */
  async function api(path, opts = {}) {
    const { method = 'GET', query, json, body, headers = {}, raw = false, key } = opts;
    const apiKey = key != null ? key : session.key();
    const init = {
      method,
      headers: { Accept: 'application/json', Authorization: `Bearer ${apiKey}`, ...headers },
      cache: 'no-store',
      credentials: 'omit',
      body,
    };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    }
    let res;
    try {
      res = await fetch(path + queryString(query), init);
    } catch (e) {
      throw new ApiError(0, null, e && e.message);
    }
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch (_) { /* not JSON */ }
      const err = new ApiError(res.status, data);
      if (res.status === 401 && key == null) expire();
      throw err;
    }
    if (raw) return res;
    if (res.status === 204) return null;
    return res.json();
  }

  const enc = encodeURIComponent;

  async function loadMerchants() {
    state.merchants = await api('/v1/merchants');
    return state.merchants;
  }

  // =========================================================================
  // Routing, and the lifetime of a view.
  // =========================================================================

  const ROUTES = [
    [/^\/overview$/, 'overview', viewOverview, 'ov.title'],
    [/^\/payouts$/, 'payouts', viewPayouts, 'po.title'],
    [/^\/payouts\/([^/]+)$/, 'payouts', viewPayout, 'd.title'],
    [/^\/campaigns$/, 'campaigns', viewCampaigns, 'c.title'],
    [/^\/campaigns\/([^/]+)$/, 'campaigns', viewCampaign, 'c.title'],
    [/^\/prizes$/, 'prizes', viewPrizes, 'p.title'],
  ];

  const NAV = [
    ['overview', '#/overview', 'nav.overview'],
    ['payouts', '#/payouts', 'nav.payouts'],
    ['campaigns', '#/campaigns', 'nav.campaigns'],
    ['prizes', '#/prizes', 'nav.prizes'],
  ];

  // The current view: its generation number, timers and cleanups. Anything
  // started by an older generation stops at its next step.
  const current = { gen: 0, timers: new Set(), cleanups: [] };

  function leaveView() {
    current.gen += 1;
    for (const id of current.timers) clearTimeout(id);
    current.timers.clear();
    for (const fn of current.cleanups.splice(0)) {
      try { fn(); } catch (_) { /* ignore */ }
    }
  }

  function makeContext(el, params) {
    const gen = current.gen;
    const alive = () => gen === current.gen && session.key() !== null;
    return {
      el,
      params,
      alive,
      /**
       * Calls fn every `ms` after the previous call finished (never two at
       * once), while the view is shown; fn returning false stops it.
       * Ticks are skipped while the tab is hidden.
       */
      poll(ms, fn) {
        let stopped = false;
        const schedule = () => {
          const id = setTimeout(async () => {
            current.timers.delete(id);
            if (!alive() || stopped) return;
            let again = true;
            if (!document.hidden) {
              try { again = (await fn()) !== false; } catch (_) { /* fn shows its errors */ }
            }
            if (again && alive() && !stopped) schedule();
          }, ms);
          current.timers.add(id);
        };
        schedule();
        return () => { stopped = true; };
      },
      onLeave(fn) { current.cleanups.push(fn); },
    };
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/overview';
    const at = raw.indexOf('?');
    const path = at < 0 ? raw : raw.slice(0, at);
    const params = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
    return { path, params };
  }

  function renderApp() {
    renderShell();
    renderView();
  }

  function renderShell() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    const signedIn = session.key() !== null;
    const root = byId('app');
    fill(root,
      h('header', { class: 'topbar' },
        h('a', { class: 'brand', href: '#/overview' },
          h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '红'),
          h('span', null, t('brand'))),
        signedIn
          ? h('nav', { class: 'nav', id: 'nav', 'aria-label': t('nav.label') },
            NAV.map(([name, href, key]) => h('a', { href, 'data-nav': name, id: `nav-${name}` }, t(key))))
          : null,
        h('div', { class: 'topbar-actions' },
          h('button', {
            id: 'lang-toggle', type: 'button', class: 'btn btn-ghost btn-small',
            title: t('lang.toggleTitle'), onclick: toggleLang,
          }, t('lang.toggle')),
          signedIn
            ? h('button', { id: 'sign-out', type: 'button', class: 'btn btn-small', onclick: signOut }, t('signOut'))
            : null)),
      h('main', { id: 'view', class: 'view' }));
  }

  function renderView() {
    leaveView();
    const view = byId('view');
    if (!view) return;
    view.replaceChildren();
    if (session.key() === null) {
      document.title = `${t('signIn.title')} · ${t('app.title')}`;
      viewSignIn(view);
      return;
    }
    const { path, params } = parseHash();
    for (const [pattern, section, fn, titleKey] of ROUTES) {
      const m = pattern.exec(path);
      if (!m) continue;
      for (const a of document.querySelectorAll('.nav a')) {
        const active = a.dataset.nav === section;
        a.classList.toggle('active', active);
        if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
      }
      document.title = `${t(titleKey)} · ${t('app.title')}`;
      const ctx = makeContext(view, params);
      let arg;
      try { arg = m[1] === undefined ? undefined : decodeURIComponent(m[1]); } catch (_) { arg = m[1]; }
      Promise.resolve()
        .then(() => fn(ctx, arg))
        .catch((err) => {
          if (err instanceof ApiError && err.unauthorized) return;
          if (ctx.alive()) view.append(h('p', { class: 'alert alert-error', role: 'alert' }, errorText(err)));
        });
      return;
    }
    location.hash = '#/overview'; // unknown route
  }

  function toggleLang() {
    state.lang = state.lang === 'en' ? 'zh' : 'en';
    try { localStorage.setItem(LANG_STORE, state.lang); } catch (_) { /* ignore */ }
    // Re-render keeps a typed-in key on the sign-in screen.
    const typed = byId('api-key');
    const key = typed ? typed.value : '';
    renderApp();
    if (typed && byId('api-key')) byId('api-key').value = key;
  }

  function signOut() {
    session.clear();
    state.merchants = [];
    state.signInMessage = null;
    leaveView();
    renderApp();
  }

  /** The key stopped working (401): back to the sign-in screen. */
  function expire() {
    if (session.key() === null) return;
    session.clear();
    state.signInMessage = 'signIn.expired';
    leaveView();
    renderApp();
  }

  // =========================================================================
  // Sign-in.
  // =========================================================================

  function viewSignIn(view) {
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
        renderApp();
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

  // =========================================================================
  // Overview.
  // =========================================================================

  async function viewOverview(ctx) {
    const banner = h('div', { id: 'balance-warning', class: 'alert alert-warning banner', role: 'alert', hidden: true });
    const statsError = h('p', { id: 'stats-error', class: 'alert alert-error', hidden: true });
    const periods = h('div', { class: 'grid-2', id: 'stats-periods' });
    const chart = h('div', { class: 'chart', id: 'chart' });
    const chartSum = h('p', { class: 'hint', id: 'chart-sum' });
    const merchantsBox = h('div', { id: 'merchants' }, h('p', { class: 'muted' }, t('loading')));
    const merchantsError = h('p', { class: 'alert alert-error', hidden: true });

    const bucketButton = (bucket, key) => h('button', {
      type: 'button', class: 'btn btn-small', id: `bucket-${bucket}`,
      'aria-pressed': String(state.bucket === bucket),
      onclick: () => {
        if (state.bucket === bucket) return;
        state.bucket = bucket;
        for (const b of ['hour', 'day']) byId(`bucket-${b}`).setAttribute('aria-pressed', String(b === bucket));
        loadStats();
      },
    }, t(key));

    add(ctx.el,
      h('div', { class: 'page-head' }, h('h1', null, t('ov.title')),
        h('span', { class: 'muted small' }, t('autoRefresh', { s: 10 }))),
      banner,
      statsError,
      periods,
      h('section', { class: 'card' },
        h('div', { class: 'card-head' },
          h('h2', null, t('ov.chart')),
          h('div', { class: 'segmented', role: 'group' },
            bucketButton('hour', 'ov.hour'), bucketButton('day', 'ov.day'))),
        chart,
        chartSum,
        h('p', { class: 'hint' }, t('ov.chartNote'))),
      h('section', { class: 'card' },
        h('h2', null, t('ov.merchants')),
        merchantsError,
        merchantsBox));

    let stats = null;
    let statsSeq = 0;

    async function loadStats() {
      const seq = ++statsSeq;
      try {
        const data = await api('/v1/stats', { query: { bucket: state.bucket } });
        if (!ctx.alive() || seq !== statsSeq) return;
        stats = data;
        showAlert(statsError, '');
        renderPeriods(periods, data);
        drawChart(chart, chartSum, data);
      } catch (err) {
        if (err.unauthorized || !ctx.alive() || seq !== statsSeq) return;
        showAlert(statsError, t('ov.statsError', { msg: errorText(err) }));
      }
    }

    async function refreshMerchants() {
      try {
        const list = await loadMerchants();
        if (!ctx.alive()) return;
        showAlert(merchantsError, '');
        renderMerchants(merchantsBox, banner, list, ctx);
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(merchantsError, errorText(err));
      }
    }

    // Redraw the chart to the new width (text keeps its size that way).
    let resizeTimer = 0;
    const onResize = () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (stats && ctx.alive()) drawChart(chart, chartSum, stats); }, 150);
    };
    window.addEventListener('resize', onResize);
    ctx.onLeave(() => { window.removeEventListener('resize', onResize); clearTimeout(resizeTimer); });

    await Promise.all([loadStats(), refreshMerchants()]);
    ctx.poll(10000, () => Promise.all([loadStats(), refreshMerchants()]));
  }

  /** Sorts status keys: the lifecycle order first, unknown ones after. */
  function statusOrder(keys, order) {
    return [...keys].sort((a, b) => {
      const ia = order.indexOf(a) < 0 ? 99 : order.indexOf(a);
      const ib = order.indexOf(b) < 0 ? 99 : order.indexOf(b);
      return ia - ib || a.localeCompare(b);
    });
  }

  function renderPeriods(box, data) {
    const period = (id, titleKey, p) => {
      p = p || { count: 0, amount: 0, by_status: {} };
      const byStatus = p.by_status || {};
      const keys = statusOrder(Object.keys(byStatus), RECORD_STATUSES);
      return h('section', { class: 'card', id },
        h('div', { class: 'card-head' },
          h('h2', null, t(titleKey)),
          data.timezone ? h('span', { class: 'muted small' }, t('ov.tz', { tz: data.timezone })) : null),
        h('div', { class: 'totals' },
          h('span', { class: 'big', id: `${id}-amount` }, yuan(p.amount)),
          h('span', { class: 'muted', id: `${id}-count` }, t('ov.records', { count: p.count }))),
        tableWrap(h('table', { id: `${id}-table` },
          thead(['col.status', ['col.count', 'num'], ['col.amount', 'num']]),
          h('tbody', null,
            keys.length === 0
              ? emptyRow(3, t('empty'))
              : keys.map((k) => h('tr', { 'data-status': k },
                h('td', null, statusBadge('record', k)),
                h('td', { class: 'num' }, byStatus[k].count),
                h('td', { class: 'num' }, yuan(byStatus[k].amount))))),
          h('tfoot', null, h('tr', null,
            h('th', { scope: 'row' }, t('ov.total')),
            h('td', { class: 'num' }, p.count),
            h('td', { class: 'num' }, yuan(p.amount)))))));
    };
    fill(box, period('stats-today', 'ov.today', data.today), period('stats-month', 'ov.month', data.month));
  }

  /** A bucket's label: hours in local time, days as dates of the stats' time zone. */
  function bucketLabel(iso, bucket, tz, long) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    if (bucket === 'day') {
      let date;
      try {
        date = new Intl.DateTimeFormat('en-CA', { timeZone: tz || undefined, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
      } catch (_) {
        date = `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
      }
      return long ? date : date.slice(5);
    }
    const hour = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    return long ? `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hour}` : hour;
  }

  /** Draws the series as an SVG bar chart sized to its container. */
  function drawChart(box, sumEl, data) {
    const series = Array.isArray(data.series) ? data.series : [];
    const bucket = data.bucket || state.bucket;
    const width = Math.max(280, Math.floor(box.clientWidth || 640));
    const height = 220;
    const m = { top: 12, right: 8, bottom: 26, left: 76 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const max = series.reduce((acc, p) => Math.max(acc, Number(p.amount) || 0), 0);
    let totalCount = 0;
    let totalAmount = 0;
    for (const p of series) {
      totalCount += Number(p.count) || 0;
      totalAmount += Number(p.amount) || 0;
    }

    const svg = s('svg', {
      viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
      'aria-label': t('ov.chartLabel'), id: 'chart-svg', 'data-bucket': bucket,
    });
    // Grid lines and the amount axis (at 0, half and the maximum).
    for (const f of [0, 0.5, 1]) {
      const y = m.top + plotH - f * plotH;
      svg.append(s('line', { class: f === 0 ? 'axis' : 'grid', x1: m.left, x2: width - m.right, y1: y, y2: y }));
      if (max > 0 || f === 0) {
        svg.append(s('text', { x: m.left - 6, y: y + 4, 'text-anchor': 'end' }, yuan(Math.round(max * f))));
      }
    }
    if (series.length === 0 || max === 0) {
      svg.append(s('text', { class: 'empty-text', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle' }, t('ov.chartEmpty')));
    }
    if (series.length > 0) {
      const slot = plotW / series.length;
      const barW = Math.max(1, slot * 0.72);
      // Label every n-th bar, n a round number of hours or days, so that
      // labels stay at least about 56 px apart.
      const need = Math.max(1, Math.ceil(56 / slot));
      const steps = bucket === 'day' ? [1, 2, 3, 5, 7, 10, 15, 30] : [1, 2, 3, 4, 6, 12, 24, 48];
      const every = steps.find((n) => n >= need) || need;
      const labelled = (p, i) => {
        if (bucket === 'day') return (series.length - 1 - i) % every === 0; // the latest day is labelled
        const d = new Date(p.start);
        return Number.isNaN(d.getTime()) ? i % every === 0 : d.getHours() % every === 0;
      };
      series.forEach((p, i) => {
        const amount = Number(p.amount) || 0;
        const x = m.left + i * slot + (slot - barW) / 2;
        if (max > 0 && amount > 0) {
          const barH = Math.max(1, (amount / max) * plotH); // pixels, not money
          svg.append(s('rect', {
            class: 'bar', x: x.toFixed(1), y: (m.top + plotH - barH).toFixed(1),
            width: barW.toFixed(1), height: barH.toFixed(1), 'data-start': p.start,
          }, s('title', null, `${bucketLabel(p.start, bucket, data.timezone, true)} · ${yuan(amount)} · ${t('ov.records', { count: p.count })}`)));
        }
        if (labelled(p, i)) {
          svg.append(s('text', { x: (m.left + i * slot + slot / 2).toFixed(1), y: height - 8, 'text-anchor': 'middle' },
            bucketLabel(p.start, bucket, data.timezone, false)));
        }
      });
    }
    fill(box, svg);
    setText(sumEl, t('ov.chartSum', { count: totalCount, amount: yuan(totalAmount) }));
  }

  function renderMerchants(box, banner, list, ctx) {
    const lowBalance = list.filter((mch) => mch.paused && mch.pause_reason === 'insufficient_balance');
    showAlert(banner, lowBalance.length ? t('ov.balanceWarning', { names: lowBalance.map((mch) => mch.name).join(', ') }) : '');
    if (list.length === 0) {
      fill(box, h('p', { class: 'muted' }, t('ov.noMerchants')));
      return;
    }
    const resume = async (button, name, rowError) => {
      button.disabled = true;
      setText(button, t('m.resuming'));
      try {
        const updated = await api(`/v1/merchants/${enc(name)}/resume`, { method: 'POST' });
        state.merchants = updated;
        if (ctx.alive()) renderMerchants(box, banner, updated, ctx);
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        button.disabled = false;
        setText(button, t('m.resume'));
        showAlert(rowError, errorText(err));
      }
    };
    fill(box, tableWrap(h('table', { id: 'merchants-table' },
      thead(['col.name', 'col.mchId', 'col.state', 'col.reason', 'col.errCode', 'col.message', 'col.since', 'col.actions']),
      h('tbody', null, list.map((mch) => {
        const rowError = h('div', { class: 'field-error', hidden: true });
        return h('tr', { 'data-merchant': mch.name, class: mch.paused ? 'paused' : null },
          h('td', null, h('strong', null, mch.name)),
          h('td', null, mono(mch.mch_id)),
          h('td', null, h('span', { class: `status status-${mch.paused ? 'paused' : 'active'}` }, t(mch.paused ? 'm.paused' : 'm.active'))),
          h('td', null, mch.paused ? label('reason', mch.pause_reason) : dash()),
          h('td', null, mono(mch.pause_err_code)),
          h('td', { class: 'wrap' }, mch.pause_message || dash()),
          h('td', null, mch.paused ? timeEl(mch.paused_at) : dash()),
          h('td', null, mch.paused
            ? [h('button', {
              type: 'button', class: 'btn btn-primary btn-small resume-merchant', 'data-merchant': mch.name,
              id: `resume-${token(mch.name)}`,
              onclick: (e) => resume(e.currentTarget, mch.name, rowError),
            }, t('m.resume')), rowError]
            : dash()));
      })))));
  }

  // =========================================================================
  // Payouts: the send form, the filters and the table.
  // =========================================================================

  function merchantSelect(id, value, withAll, onChange) {
    return h('select', { id, onchange: (e) => onChange(e.target.value) },
      withAll ? h('option', { value: '' }, t('f.all')) : null,
      state.merchants.map((mch) => h('option', { value: mch.name, selected: mch.name === value }, mch.name)));
  }

  function field(labelKey, control, extra) {
    return h('div', { class: 'field' }, h('label', { for: control.id }, t(labelKey)), control, extra || null);
  }

  async function viewPayouts(ctx) {
    // Filters given in the link (e.g. from a campaign) replace the current
    // ones; the hash is then cleaned so a reload does not re-apply them.
    const linkFilters = ['status', 'merchant', 're_openid', 'mch_billno', 'campaign_id'];
    if (linkFilters.some((k) => ctx.params.has(k))) {
      state.payoutFilters = emptyPayoutFilters();
      for (const k of linkFilters) state.payoutFilters[k] = ctx.params.get(k) || '';
      state.payoutApplied = { ...state.payoutFilters };
      state.payoutOffset = 0;
      history.replaceState(null, '', '#/payouts');
    }
    if (state.merchants.length === 0) {
      try { await loadMerchants(); } catch (err) { if (err.unauthorized) return; }
      if (!ctx.alive()) return;
    }

    const tableError = h('p', { class: 'alert alert-error', id: 'payouts-error', hidden: true });
    const updated = h('span', { class: 'muted small', id: 'payouts-updated' });
    const tbody = h('tbody');
    const pagerInfo = h('span', { class: 'muted small', id: 'payouts-page-info' });
    const prev = h('button', { type: 'button', class: 'btn btn-small', id: 'payouts-prev', disabled: true }, t('pager.prev'));
    const next = h('button', { type: 'button', class: 'btn btn-small', id: 'payouts-next', disabled: true }, t('pager.next'));

    add(ctx.el,
      h('div', { class: 'page-head' }, h('h1', null, t('po.title'))),
      sendForm(),
      filtersForm(),
      h('section', { class: 'card' },
        h('div', { class: 'card-head' },
          h('h2', null, t('po.list')),
          h('span', { class: 'muted small' }, t('autoRefresh', { s: 3 }), ' · ', updated)),
        tableError,
        tableWrap(h('table', { id: 'payouts-table' },
          thead(['col.created', 'col.merchant', 'col.openid', ['col.amount', 'num'], 'col.status', 'col.billno', 'col.error']),
          tbody)),
        h('div', { class: 'pager' }, pagerInfo, h('div', { class: 'pager-buttons' }, prev, next))));

    let seq = 0;
    let meta = null;

    async function loadTable() {
      const mySeq = ++seq;
      const f = state.payoutApplied;
      const query = {
        status: f.status,
        merchant: f.merchant,
        re_openid: f.re_openid.trim(),
        mch_billno: f.mch_billno.trim(),
        campaign_id: f.campaign_id.trim(),
        created_from: f.from ? localDateToRfc3339(f.from, 0) : '',
        // "to" is inclusive in the form; the API's created_to is exclusive.
        created_to: f.to ? localDateToRfc3339(f.to, 1) : '',
        offset: state.payoutOffset,
        limit: PAGE_SIZE,
      };
      try {
        const data = await api('/v1/redpacks', { query });
        if (!ctx.alive() || mySeq !== seq) return;
        // A page past the end (records went away, or filters narrowed): go back.
        if (data.objects.length === 0 && data.meta.total_count > 0 && state.payoutOffset > 0) {
          state.payoutOffset = Math.max(0, data.meta.total_count - PAGE_SIZE);
          await loadTable();
          return;
        }
        meta = data.meta;
        showAlert(tableError, '');
        renderRows(data.objects);
        renderPager(meta);
        setText(updated, t('updatedAt', { time: localTime(new Date().toISOString()) }));
      } catch (err) {
        if (err.unauthorized || !ctx.alive() || mySeq !== seq) return;
        showAlert(tableError, errorText(err));
      }
    }

    function renderRows(records) {
      if (records.length === 0) {
        fill(tbody, emptyRow(7, t('empty')));
        return;
      }
      syncRows(tbody, records, (r) => [
        [r.created_at, () => h('a', { href: `#/payouts/${enc(r.id)}`, class: 'detail-link' }, timeEl(r.created_at)), 'nowrap'],
        [r.merchant, () => r.merchant],
        [r.re_openid, () => mono(r.re_openid)],
        [r.total_amount, () => yuan(r.total_amount), 'num'],
        [r.status, () => statusBadge('record', r.status)],
        [r.mch_billno, () => mono(r.mch_billno)],
        [[r.err_code, r.message, r.zh_message], () => recordError(r), 'wrap'],
      ], (id) => { location.hash = `#/payouts/${enc(id)}`; });
    }

    function renderPager(m) {
      prev.disabled = !m.previous;
      next.disabled = !m.next;
      setText(pagerInfo, m.total_count === 0
        ? t('pager.none')
        : t('pager.info', { from: m.offset + 1, to: Math.min(m.offset + m.limit, m.total_count), total: m.total_count }));
    }

    prev.addEventListener('click', () => {
      if (!meta) return;
      state.payoutOffset = Math.max(0, meta.offset - meta.limit);
      loadTable();
    });
    next.addEventListener('click', () => {
      if (!meta) return;
      state.payoutOffset = meta.offset + meta.limit;
      loadTable();
    });

    function filtersForm() {
      const f = state.payoutFilters;
      const input = (id, key, type) => h('input', {
        id, type: type || 'text', value: f[key], autocomplete: 'off',
        oninput: (e) => { f[key] = e.target.value; },
      });
      const form = h('form', { class: 'card', id: 'payout-filters', novalidate: true },
        h('h2', null, t('filters.title')),
        h('div', { class: 'form-grid' },
          field('f.status', h('select', { id: 'filter-status', onchange: (e) => { f.status = e.target.value; } },
            h('option', { value: '' }, t('f.all')),
            RECORD_STATUSES.map((st) => h('option', { value: st, selected: st === f.status }, label('st.record', st))))),
          state.merchants.length > 1
            ? field('f.merchant', merchantSelect('filter-merchant', f.merchant, true, (v) => { f.merchant = v; }))
            : null,
          field('f.openid', input('filter-openid', 're_openid')),
          field('f.billno', input('filter-billno', 'mch_billno')),
          field('f.campaign', input('filter-campaign', 'campaign_id')),
          field('f.from', input('filter-from', 'from', 'date')),
          field('f.to', input('filter-to', 'to', 'date'))),
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', class: 'btn btn-primary', id: 'filter-apply' }, t('f.apply')),
          h('button', {
            type: 'button', class: 'btn', id: 'filter-reset',
            onclick: () => {
              state.payoutFilters = emptyPayoutFilters();
              state.payoutApplied = emptyPayoutFilters();
              state.payoutOffset = 0;
              form.replaceWith(filtersForm());
              loadTable();
            },
          }, t('f.reset'))));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        state.payoutApplied = { ...state.payoutFilters };
        state.payoutOffset = 0;
        loadTable();
      });
      return form;
    }

    tbody.append(emptyRow(7, t('loading')));
    await loadTable();
    ctx.poll(3000, loadTable);
  }

  /** A record's failure: err_code and the message in the current language. */
  function recordError(r) {
    if (!r.err_code && !r.message) return dash();
    const msg = state.lang === 'zh' ? r.zh_message || r.message : r.message || r.zh_message;
    return [r.err_code ? h('span', { class: 'mono' }, r.err_code) : null, r.err_code && msg ? ' ' : null, msg || null];
  }

  /** The send form: a `normal` packet of one, with an Idempotency-Key. */
  function sendForm() {
    const d = state.send;
    const control = (id, key, attrs) => h('input', {
      id, type: 'text', value: d[key], autocomplete: 'off', ...attrs,
      oninput: (e) => {
        d[key] = e.target.value;
        state.sendKey = null; // another body: another payout, another key
        e.target.removeAttribute('aria-invalid');
      },
    });
    const withError = (name, labelKey, input) => {
      input.setAttribute('aria-describedby', 'send-error');
      return field(labelKey, input);
    };
    const inputs = {
      re_openid: control('send-openid', 'openid', { maxlength: 64, spellcheck: 'false' }),
      total_amount: control('send-amount', 'amount', { inputmode: 'decimal', placeholder: '1.88' }),
      wishing: control('send-wishing', 'wishing', { placeholder: t('send.default') }),
      act_name: control('send-act-name', 'act_name', { placeholder: t('send.default') }),
      remark: control('send-remark', 'remark', { placeholder: t('send.default') }),
    };
    let merchantField = null;
    if (state.merchants.length > 1) {
      if (!state.merchants.some((mch) => mch.name === d.merchant)) d.merchant = state.merchants[0].name;
      inputs.merchant = merchantSelect('send-merchant', d.merchant, false, (v) => { d.merchant = v; state.sendKey = null; });
      merchantField = withError('merchant', 'send.merchant', inputs.merchant);
    }
    const error = h('div', { id: 'send-error', class: 'alert alert-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'send-submit' }, t('send.submit'));

    const clearErrors = () => {
      showAlert(error, '');
      for (const input of Object.values(inputs)) input.removeAttribute('aria-invalid');
    };
    // The message goes to #send-error; the field at fault is marked too.
    const fail = (fieldName, text) => {
      showAlert(error, text);
      if (fieldName && inputs[fieldName]) {
        inputs[fieldName].setAttribute('aria-invalid', 'true');
        inputs[fieldName].focus();
      }
    };

    const form = h('form', { class: 'card', id: 'send-form', novalidate: true },
      h('h2', null, t('send.title')),
      h('div', { class: 'form-grid' },
        merchantField,
        withError('re_openid', 'send.openid', inputs.re_openid),
        withError('total_amount', 'send.amount', inputs.total_amount),
        withError('wishing', 'send.wishing', inputs.wishing),
        withError('act_name', 'send.actName', inputs.act_name),
        withError('remark', 'send.remark', inputs.remark)),
      error,
      h('div', { class: 'form-actions' }, submit),
      h('p', { class: 'hint' }, t('send.hint')));

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (submit.disabled) return;
      clearErrors();
      const openid = d.openid.trim();
      if (!openid) { fail('re_openid', t('send.needOpenid')); return; }
      const fen = parseYuan(d.amount);
      if (fen === null || fen <= 0) { fail('total_amount', t('send.badAmount')); return; }
      const body = { type: 'normal', re_openid: openid, total_amount: fen, total_num: 1 };
      // Empty texts are left out: the merchant's configured defaults apply.
      for (const k of ['wishing', 'act_name', 'remark']) if (d[k].trim()) body[k] = d[k].trim();
      if (inputs.merchant && d.merchant) body.merchant = d.merchant;
      // The key is kept until the body changes or the payout is stored, so
      // a resubmission after a lost answer answers the same record.
      if (!state.sendKey) state.sendKey = uuid();
      submit.disabled = true;
      setText(submit, t('send.sending'));
      try {
        const record = await api('/v1/redpacks', {
          method: 'POST', json: body, headers: { 'Idempotency-Key': state.sendKey },
        });
        state.sendKey = null;
        d.openid = '';
        d.amount = '';
        location.hash = `#/payouts/${enc(record.id)}`;
      } catch (err) {
        if (err.unauthorized) return;
        submit.disabled = false;
        setText(submit, t('send.submit'));
        const apiField = err.error && err.error.field;
        fail(apiField && inputs[apiField] ? apiField : null, errorText(err));
      }
    });
    return form;
  }

  // =========================================================================
  // Payout detail.
  // =========================================================================

  const RECORD_FIELDS = [
    'id', 'merchant', 'type', 'status', 'mch_billno', 're_openid', 'total_amount', 'total_num',
    'send_name', 'wishing', 'act_name', 'remark', 'scene_id', 'send_listid', 'wechat_status',
    'refund_amount', 'err_code', 'message', 'attempts', 'campaign_id', 'prize_id', 'created_at', 'updated_at',
  ];

  async function viewPayout(ctx, id) {
    const fields = h('dl', { class: 'fields', id: 'record-fields' });
    const statusEl = statusBadge('record', null, 'detail-status');
    const polling = h('span', { class: 'muted small', id: 'detail-polling', hidden: true }, t('d.polling'));
    const recordError = h('p', { class: 'alert alert-error', id: 'detail-error', hidden: true });
    const attemptsBody = h('tbody');
    const wechatBox = h('div', { id: 'wechat-section' });
    const wechatError = h('p', { class: 'alert alert-error', id: 'wechat-error', hidden: true });
    const refreshButton = h('button', { type: 'button', class: 'btn btn-primary', id: 'refresh-wechat' }, t('d.refreshWechat'));
    const dd = {};
    for (const name of RECORD_FIELDS) {
      dd[name] = h('dd', { id: `detail-field-${name}` });
      fields.append(h('dt', null, t(`fld.${name}`)), dd[name]);
    }
    dd.status.append(statusEl);
    const miniDt = h('dt', { hidden: true }, t('fld.mini_program'));
    const miniDd = h('dd', { id: 'detail-field-mini_program', hidden: true });
    fields.append(miniDt, miniDd);

    add(ctx.el,
      h('a', { class: 'back', href: '#/payouts' }, t('d.back')),
      h('div', { class: 'page-head' },
        h('h1', null, t('d.title'), ' ', h('span', { class: 'mono' }, id)),
        polling),
      recordError,
      h('section', { class: 'card' }, h('h2', null, t('d.record')), fields),
      h('section', { class: 'card' },
        h('h2', null, t('d.attempts')),
        tableWrap(h('table', { id: 'attempts-table' },
          thead(['col.time', 'col.api', 'col.outcome', 'col.errCode', ['col.latency', 'num'], 'col.detail']),
          attemptsBody))),
      h('section', { class: 'card', id: 'wechat-card' },
        h('div', { class: 'card-head' }, h('h2', null, t('d.wechat')), refreshButton),
        h('p', { class: 'hint' }, t('d.wechatHint')),
        wechatError,
        wechatBox));

    let record = null;
    let asked = false; // whether the WeChat section shows a gethbinfo answer

    function showRecord(r) {
      record = r;
      updateBadge(statusEl, 'record', r.status);
      const set = (name, content) => {
        const sig = `${state.lang}|${JSON.stringify(content && content.sig)}`;
        if (dd[name].dataset.sig === sig) return;
        dd[name].dataset.sig = sig;
        dd[name].replaceChildren();
        append(dd[name], [content.build()]);
      };
      const plain = (v) => ({ sig: v, build: () => (v == null || v === '' ? dash() : String(v)) });
      const code = (v) => ({ sig: v, build: () => mono(v) });
      set('id', code(r.id));
      set('merchant', plain(r.merchant));
      set('type', plain(label('type', r.type)));
      set('mch_billno', code(r.mch_billno));
      set('re_openid', code(r.re_openid));
      set('total_amount', { sig: r.total_amount, build: () => h('strong', null, yuan(r.total_amount)) });
      set('total_num', plain(r.total_num));
      set('send_name', plain(r.send_name));
      set('wishing', plain(r.wishing));
      set('act_name', plain(r.act_name));
      set('remark', plain(r.remark));
      set('scene_id', plain(r.scene_id));
      set('send_listid', code(r.send_listid));
      set('wechat_status', code(r.wechat_status));
      set('refund_amount', { sig: r.refund_amount, build: () => (r.refund_amount == null ? dash() : yuan(r.refund_amount)) });
      set('err_code', code(r.err_code));
      set('message', plain(state.lang === 'zh' ? r.zh_message || r.message : r.message || r.zh_message));
      set('attempts', plain(r.attempts));
      set('campaign_id', { sig: r.campaign_id, build: () => (r.campaign_id ? h('a', { href: `#/campaigns/${enc(r.campaign_id)}`, class: 'mono' }, r.campaign_id) : dash()) });
      set('prize_id', code(r.prize_id));
      set('created_at', { sig: r.created_at, build: () => timeEl(r.created_at) });
      set('updated_at', { sig: r.updated_at, build: () => timeEl(r.updated_at) });
      miniDt.hidden = !r.mini_program;
      miniDd.hidden = !r.mini_program;
      if (r.mini_program) fill(miniDd, h('pre', { class: 'code' }, JSON.stringify(r.mini_program, null, 2)));
      if (!asked) renderWechat(null);
    }

    function showAttempts(list) {
      if (!list.length) {
        fill(attemptsBody, emptyRow(6, t('d.noAttempts')));
        return;
      }
      fill(attemptsBody, ...list.map((a, i) => h('tr', { 'data-index': i },
        h('td', { class: 'nowrap' }, timeEl(a.started_at)),
        h('td', null, mono(a.api)),
        h('td', null, h('span', { class: `outcome outcome-${token(a.outcome)}` }, a.outcome)),
        h('td', null, mono(a.err_code)),
        h('td', { class: 'num' }, a.latency_ms == null ? '—' : `${a.latency_ms} ms`),
        h('td', { class: 'wrap' },
          a.detail || (a.answer ? null : dash()),
          a.answer ? h('details', { class: 'answer' }, h('summary', null, t('d.answer')), h('pre', null, a.answer)) : null))));
    }

    /** The WeChat section: gethbinfo's answer, or the record's view of it. */
    function renderWechat(w) {
      const row = (key, content) => [h('dt', null, t(key)), h('dd', null, content)];
      if (!w) {
        const r = record || {};
        fill(wechatBox,
          h('p', { class: 'muted small' }, t('d.notAsked')),
          h('dl', { class: 'fields', id: 'wechat-fields' },
            row('w.status', h('span', { class: 'mono', id: 'wechat-status' }, r.wechat_status || '—')),
            row('fld.send_listid', mono(r.send_listid)),
            row('w.refund_amount', h('span', { id: 'wechat-refund-amount' }, r.refund_amount == null ? '—' : yuan(r.refund_amount)))));
        return;
      }
      const hblist = Array.isArray(w.hblist) ? w.hblist : [];
      fill(wechatBox,
        h('p', { class: 'muted small' }, t('d.askedAt', { time: localTime(new Date().toISOString()) })),
        w.status === 'NOT_FOUND' ? h('p', { class: 'alert alert-info' }, t('d.notFound')) : null,
        h('dl', { class: 'fields', id: 'wechat-fields' },
          row('w.status', h('span', { class: 'mono', id: 'wechat-status' }, w.status || '—')),
          row('w.detail_id', mono(w.detail_id)),
          row('w.send_type', w.send_type || '—'),
          row('w.hb_type', w.hb_type || '—'),
          row('w.total_num', w.total_num == null ? '—' : String(w.total_num)),
          row('w.total_amount', w.total_amount == null ? '—' : yuan(w.total_amount)),
          row('w.reason', w.reason || '—'),
          row('w.send_time', beijingTimeEl(w.send_time)),
          row('w.refund_time', h('span', { id: 'wechat-refund-time' }, beijingTimeEl(w.refund_time))),
          row('w.refund_amount', h('span', { id: 'wechat-refund-amount' }, w.refund_amount == null ? '—' : yuan(w.refund_amount)))),
        h('h3', null, t('d.hblist')),
        tableWrap(h('table', { id: 'hblist-table' },
          thead(['col.openid', ['col.amount', 'num'], 'col.rcvTime']),
          h('tbody', null, hblist.length === 0
            ? emptyRow(3, t('empty'))
            : hblist.map((x) => h('tr', null,
              h('td', null, mono(x.openid)),
              h('td', { class: 'num' }, x.amount == null ? '—' : yuan(x.amount)),
              h('td', null, beijingTimeEl(x.rcv_time))))))));
    }

    async function load() {
      try {
        const [r, attempts] = await Promise.all([
          api(`/v1/redpacks/${enc(id)}`),
          api(`/v1/redpacks/${enc(id)}/attempts`),
        ]);
        if (!ctx.alive()) return;
        showAlert(recordError, '');
        showRecord(r);
        showAttempts(attempts);
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(recordError, errorText(err));
      }
    }

    const moving = () => record && (record.status === 'pending' || record.status === 'sending');
    let stopPolling = null;
    function followIfMoving() {
      if (moving() && !stopPolling) {
        polling.hidden = false;
        stopPolling = ctx.poll(2000, async () => {
          await load();
          if (moving()) return true;
          polling.hidden = true;
          stopPolling = null;
          return false;
        });
      }
    }

    refreshButton.addEventListener('click', async () => {
      refreshButton.disabled = true;
      setText(refreshButton, t('d.querying'));
      showAlert(wechatError, '');
      try {
        const answer = await api('/v1/redpacks/status', { query: { id } });
        if (!ctx.alive()) return;
        asked = true;
        showRecord(answer.record);
        renderWechat(answer.wechat);
        followIfMoving();
        // The status call may have added an attempt (gethbinfo).
        api(`/v1/redpacks/${enc(id)}/attempts`).then((a) => { if (ctx.alive()) showAttempts(a); }, () => {});
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(wechatError, errorText(err));
      } finally {
        if (ctx.alive()) {
          refreshButton.disabled = false;
          setText(refreshButton, t('d.refreshWechat'));
        }
      }
    });

    attemptsBody.append(emptyRow(6, t('loading')));
    await load();
    followIfMoving();
  }

  // =========================================================================
  // Campaigns.
  // =========================================================================

  function progressBar(c, large) {
    const total = Number(c.rows) || 0;
    const paid = Number(c.paid_count) || 0;
    const failed = Number(c.failed_count) || 0;
    const pct = (n) => (total > 0 ? `${Math.min(100, (n * 100) / total).toFixed(2)}%` : '0%');
    const paidBar = h('div', { class: 'progress-paid' });
    const failedBar = h('div', { class: 'progress-failed' });
    paidBar.style.width = pct(paid); // CSSOM: allowed by the page's CSP
    failedBar.style.width = pct(failed);
    return h('div', { class: 'progress-wrap' },
      h('div', {
        class: `progress${large ? ' progress-large' : ''}`, role: 'progressbar',
        'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': paid,
      }, paidBar, failedBar),
      h('div', { class: 'progress-label' },
        failed ? t('c.progressFailed', { paid, total, failed }) : t('c.progress', { paid, total })));
  }

  function statusChips(counts, amounts) {
    const keys = statusOrder(Object.keys(counts || {}), RECORD_STATUSES);
    if (!keys.length) return dash();
    return h('div', { class: 'chips' }, keys.map((k) => h('span', { class: 'chip' },
      statusBadge('record', k), ' ', counts[k], ' · ', yuan((amounts || {})[k] || 0))));
  }

  async function viewCampaigns(ctx) {
    if (state.merchants.length === 0) {
      try { await loadMerchants(); } catch (err) { if (err.unauthorized) return; }
      if (!ctx.alive()) return;
    }
    const listError = h('p', { class: 'alert alert-error', hidden: true, id: 'campaigns-error' });
    const tbody = h('tbody', null, emptyRow(10, t('loading')));
    add(ctx.el,
      h('div', { class: 'page-head' }, h('h1', null, t('c.title'))),
      campaignForm(ctx),
      h('section', { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', null, t('c.list')), h('span', { class: 'muted small' }, t('autoRefresh', { s: 5 }))),
        listError,
        tableWrap(h('table', { id: 'campaigns-table' },
          thead(['col.name', 'col.status', 'col.progress', ['col.rows', 'num'], ['col.total', 'num'],
            ['col.paid', 'num'], ['col.failed', 'num'], ['col.open', 'num'], 'col.byStatus', 'col.created']),
          tbody))));

    async function loadList() {
      try {
        const list = await api('/v1/campaigns');
        if (!ctx.alive()) return;
        showAlert(listError, '');
        if (!list.length) {
          fill(tbody, emptyRow(10, t('c.none')));
          return;
        }
        syncRows(tbody, list, (c) => [
          [[c.name, c.id], () => h('a', { href: `#/campaigns/${enc(c.id)}` }, c.name)],
          [c.status, () => statusBadge('campaign', c.status)],
          [[c.rows, c.paid_count, c.failed_count], () => progressBar(c, false)],
          [c.rows, () => c.rows, 'num'],
          [c.total_amount, () => yuan(c.total_amount), 'num'],
          [[c.paid_count, c.paid_amount], () => [String(c.paid_count), h('div', { class: 'muted small' }, yuan(c.paid_amount))], 'num'],
          [[c.failed_count, c.failed_amount], () => [String(c.failed_count), h('div', { class: 'muted small' }, yuan(c.failed_amount))], 'num'],
          [[c.open_count, c.open_amount], () => [String(c.open_count), h('div', { class: 'muted small' }, yuan(c.open_amount))], 'num'],
          [[c.counts, c.amounts], () => statusChips(c.counts, c.amounts)],
          [c.created_at, () => timeEl(c.created_at)],
        ], (cid) => { location.hash = `#/campaigns/${enc(cid)}`; });
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(listError, errorText(err));
      }
    }

    await loadList();
    ctx.poll(5000, loadList);
  }

  /** The CSV upload, posted as campaigns.rs expects: options in the query, the file as a text/csv body. */
  function campaignForm(ctx) {
    const d = state.campaignDraft;
    const nameInput = h('input', { id: 'campaign-name', type: 'text', value: d.name, maxlength: 128, autocomplete: 'off', oninput: (e) => { d.name = e.target.value; } });
    const fileInput = h('input', { id: 'campaign-file', type: 'file', accept: '.csv,text/csv' });
    const amountInput = h('input', { id: 'campaign-amount', type: 'text', value: d.amount, inputmode: 'decimal', placeholder: '1.88', autocomplete: 'off', oninput: (e) => { d.amount = e.target.value; } });
    const repeatInput = h('input', { id: 'campaign-allow-repeat', type: 'checkbox', checked: d.allowRepeat, onchange: (e) => { d.allowRepeat = e.target.checked; } });
    const dryRunInput = h('input', { id: 'campaign-dry-run', type: 'checkbox', checked: d.dryRun, onchange: (e) => { d.dryRun = e.target.checked; } });
    const errors = h('div', { id: 'campaign-errors', role: 'alert', hidden: true });
    const result = h('p', { id: 'campaign-result', class: 'alert alert-ok', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'campaign-submit' }, t('c.submit'));
    let merchantField = null;
    if (state.merchants.length > 1) {
      if (!state.merchants.some((mch) => mch.name === d.merchant)) d.merchant = state.merchants[0].name;
      merchantField = field('c.merchant', merchantSelect('campaign-merchant', d.merchant, false, (v) => { d.merchant = v; }));
    }

    // A name from the file's, when none was typed.
    fileInput.addEventListener('change', () => {
      const file = fileInput.files && fileInput.files[0];
      if (file && !nameInput.value.trim()) {
        nameInput.value = file.name.replace(/\.csv$/i, '');
        d.name = nameInput.value;
      }
    });

    const showError = (text) => {
      fill(errors, h('p', { class: 'alert alert-error' }, text));
      errors.hidden = false;
    };

    const form = h('form', { class: 'card', id: 'campaign-form', novalidate: true },
      h('h2', null, t('c.upload')),
      h('div', { class: 'form-grid' },
        field('c.name', nameInput),
        merchantField,
        field('c.file', fileInput),
        field('c.amount', amountInput)),
      h('div', { class: 'form-actions' },
        h('div', { class: 'field field-check' }, repeatInput, h('label', { for: 'campaign-allow-repeat' }, t('c.allowRepeat'))),
        h('div', { class: 'field field-check' }, dryRunInput, h('label', { for: 'campaign-dry-run' }, t('c.dryRun')))),
      h('p', { class: 'hint' }, t('c.fileHint')),
      errors,
      result,
      h('div', { class: 'form-actions' }, submit));

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (submit.disabled) return;
      errors.hidden = true;
      errors.replaceChildren();
      showAlert(result, '');
      const name = nameInput.value.trim();
      const file = fileInput.files && fileInput.files[0];
      if (!name) { showError(t('c.needName')); nameInput.focus(); return; }
      if (!file) { showError(t('c.needFile')); fileInput.focus(); return; }
      let amount = '';
      if (amountInput.value.trim()) {
        const fen = parseYuan(amountInput.value);
        if (fen === null || fen <= 0) { showError(t('c.badAmount')); amountInput.focus(); return; }
        amount = fenToYuanString(fen);
      }
      const query = {
        name,
        merchant: merchantField ? d.merchant : '',
        amount,
        allow_repeat: repeatInput.checked ? 'true' : '',
        dry_run: dryRunInput.checked ? 'true' : '',
      };
      submit.disabled = true;
      setText(submit, t('c.uploading'));
      try {
        const answer = await api('/v1/campaigns', {
          method: 'POST', query, body: file, headers: { 'Content-Type': 'text/csv; charset=utf-8' },
        });
        if (!ctx.alive()) return;
        if (answer && answer.id) {
          d.name = '';
          d.amount = '';
          location.hash = `#/campaigns/${enc(answer.id)}`;
          return;
        }
        // A dry run: the totals only.
        showAlert(result, t('c.dryRunOk', { rows: answer.rows, amount: yuan(answer.total_amount) }));
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        if (err.body && Array.isArray(err.body.rows)) {
          renderBadRows(errors, err);
        } else {
          showError(errorText(err));
        }
      } finally {
        if (ctx.alive()) {
          submit.disabled = false;
          setText(submit, t('c.submit'));
        }
      }
    });
    return form;
  }

  /** The 422 invalid_rows report: every bad row with its line and reason. */
  function renderBadRows(box, err) {
    const rows = err.body.rows;
    const total = Number(err.body.bad_rows) || rows.length;
    fill(box,
      h('p', { class: 'alert alert-error', id: 'campaign-errors-summary' }, errorText(err, true)),
      total > rows.length ? h('p', { class: 'hint' }, t('c.rowsShown', { shown: rows.length, total })) : null,
      tableWrap(h('table', { id: 'campaign-errors-table' },
        thead([['col.line', 'num'], 'col.field', 'col.reason']),
        h('tbody', null, rows.map((r) => h('tr', { class: 'bad-row', 'data-line': r.line, 'data-field': r.field || '' },
          h('td', { class: 'num' }, r.line),
          h('td', null, mono(r.field)),
          h('td', { class: 'wrap', title: rowText(state.lang === 'zh' ? r.message : r.zh_message) },
            rowText(state.lang === 'zh' ? r.zh_message || r.message : r.message || r.zh_message))))))));
    box.hidden = false;
  }

  /** A bad row's reason as this form says it: the API's option
   * `allow_repeat` is the form's checkbox here. */
  function rowText(text) {
    return String(text || '')
      .replace('set allow_repeat', t('c.repeatHint', { option: t('c.allowRepeat') }))
      .replace('设置 allow_repeat', t('c.repeatHint', { option: t('c.allowRepeat') }));
  }

  async function viewCampaign(ctx, id) {
    const statusEl = statusBadge('campaign', null, 'campaign-status');
    const title = h('span', { id: 'campaign-name-title' }, id);
    const polling = h('span', { class: 'muted small', id: 'campaign-polling', hidden: true }, t('c.polling'));
    const error = h('p', { class: 'alert alert-error', id: 'campaign-error', hidden: true });
    const merchantPaused = h('p', { class: 'alert alert-warning', id: 'campaign-merchant-paused', hidden: true });
    const operatorPaused = h('p', { class: 'alert alert-info', id: 'campaign-paused-note', hidden: true });
    const pauseButton = h('button', { type: 'button', class: 'btn', id: 'campaign-pause', disabled: true }, t('c.pause'));
    const resumeButton = h('button', { type: 'button', class: 'btn btn-primary', id: 'campaign-resume', disabled: true }, t('c.resume'));
    const reportButton = h('button', { type: 'button', class: 'btn', id: 'campaign-report' }, t('c.report'));
    const progress = h('div', { id: 'campaign-progress' });
    const kpis = h('div', { class: 'kpis', id: 'campaign-kpis' });
    const byStatus = h('tbody');
    const errCodes = h('div', { id: 'campaign-err-codes' });
    const info = h('dl', { class: 'fields', id: 'campaign-info' });

    add(ctx.el,
      h('a', { class: 'back', href: '#/campaigns' }, t('c.back')),
      h('div', { class: 'page-head' },
        h('h1', null, title, ' ', statusEl),
        polling),
      error,
      merchantPaused,
      operatorPaused,
      h('section', { class: 'card' },
        progress,
        kpis,
        h('div', { class: 'form-actions' },
          pauseButton, resumeButton, reportButton,
          h('a', { class: 'btn btn-ghost', id: 'campaign-payouts', href: `#/payouts?campaign_id=${enc(id)}` }, t('c.payouts')))),
      h('div', { class: 'grid-2' },
        h('section', { class: 'card' },
          h('h2', null, t('c.byStatus')),
          tableWrap(h('table', { id: 'campaign-by-status' },
            thead(['col.status', ['col.count', 'num'], ['col.amount', 'num']]), byStatus))),
        h('section', { class: 'card' }, h('h2', null, t('c.errCodes')), errCodes)),
      h('section', { class: 'card' }, info));

    let campaign = null;

    function show(c) {
      campaign = c;
      setText(title, c.name);
      document.title = `${c.name} · ${t('app.title')}`;
      updateBadge(statusEl, 'campaign', c.status);
      showAlert(merchantPaused, c.merchant_paused ? t('c.merchantPaused', { msg: c.merchant_paused }) : '');
      showAlert(operatorPaused, c.paused && c.status !== 'done' ? t('c.operatorPaused') : '');
      pauseButton.disabled = c.paused || c.status === 'done';
      resumeButton.disabled = !(c.paused || c.merchant_paused || c.status === 'paused');
      fill(progress, progressBar(c, true));
      const kpi = (key, value, sub, kid) => h('div', { class: 'kpi', id: kid },
        h('div', { class: 'kpi-label' }, t(key)),
        h('div', { class: 'kpi-value' }, value),
        sub ? h('div', { class: 'kpi-sub' }, sub) : null);
      fill(kpis,
        kpi('c.rows', String(c.rows), null, 'kpi-rows'),
        kpi('c.imported', String(c.imported), null, 'kpi-imported'),
        kpi('c.totalAmount', yuan(c.total_amount), null, 'kpi-total'),
        kpi('c.paid', String(c.paid_count), yuan(c.paid_amount), 'kpi-paid'),
        kpi('c.failed', String(c.failed_count), yuan(c.failed_amount), 'kpi-failed'),
        kpi('c.open', String(c.open_count), yuan(c.open_amount), 'kpi-open'));
      const keys = statusOrder(Object.keys(c.counts || {}), RECORD_STATUSES);
      fill(byStatus, ...(keys.length ? keys.map((k) => h('tr', { 'data-status': k },
        h('td', null, statusBadge('record', k)),
        h('td', { class: 'num' }, c.counts[k]),
        h('td', { class: 'num' }, yuan((c.amounts || {})[k] || 0)))) : [emptyRow(3, t('empty'))]));
      const codes = Object.entries(c.err_codes || {}).sort((a, b) => b[1] - a[1]);
      fill(errCodes, codes.length
        ? tableWrap(h('table', null, thead(['col.errCode', ['col.count', 'num']]),
          h('tbody', null, codes.map(([code, n]) => h('tr', null, h('td', null, mono(code)), h('td', { class: 'num' }, n))))))
        : h('p', { class: 'muted' }, t('c.noFailures')));
      const row = (key, content) => [h('dt', null, t(key)), h('dd', null, content)];
      fill(info,
        ...row('c.id', mono(c.id)),
        ...row('col.merchant', c.merchant),
        ...row('c.sha', mono(c.file_sha256)),
        ...row('fld.created_at', timeEl(c.created_at)),
        ...row('fld.updated_at', timeEl(c.updated_at)));
    }

    async function load() {
      try {
        const c = await api(`/v1/campaigns/${enc(id)}`);
        if (!ctx.alive()) return;
        showAlert(error, '');
        show(c);
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(error, errorText(err));
      }
    }

    let stopPolling = null;
    function followUntilDone() {
      if (campaign && campaign.status !== 'done' && !stopPolling) {
        polling.hidden = false;
        stopPolling = ctx.poll(2000, async () => {
          await load();
          if (!campaign || campaign.status !== 'done') return true;
          polling.hidden = true;
          stopPolling = null;
          return false;
        });
      }
    }

    const action = (button, path) => async () => {
      button.disabled = true;
      showAlert(error, '');
      try {
        const c = await api(`/v1/campaigns/${enc(id)}/${path}`, { method: 'POST' });
        if (!ctx.alive()) return;
        show(c);
        followUntilDone();
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(error, errorText(err));
        if (campaign) show(campaign);
      }
    };
    pauseButton.addEventListener('click', action(pauseButton, 'pause'));
    resumeButton.addEventListener('click', action(resumeButton, 'resume'));

    // The report needs the Authorization header, so it cannot be a plain
    // link: fetch it, then hand the browser a Blob URL to save.
    reportButton.addEventListener('click', async () => {
      reportButton.disabled = true;
      showAlert(error, '');
      try {
        const res = await api(`/v1/campaigns/${enc(id)}/report.csv`, { raw: true, headers: { Accept: 'text/csv' } });
        const blob = await res.blob();
        const fromHeader = /filename="?([^";]+)"?/i.exec(res.headers.get('Content-Disposition') || '');
        const name = fromHeader ? fromHeader[1] : `${campaign ? campaign.name : id}.csv`;
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: name, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(error, errorText(err));
      } finally {
        if (ctx.alive()) reportButton.disabled = false;
      }
    });

    byStatus.append(emptyRow(3, t('loading')));
    await load();
    followUntilDone();
  }

  // =========================================================================
  // Prizes.
  // =========================================================================

  async function viewPrizes(ctx) {
    const f = state.prizeFilters;
    const activitiesError = h('p', { class: 'alert alert-error', hidden: true });
    const activitiesBody = h('tbody', null, emptyRow(10, t('loading')));
    const prizesError = h('p', { class: 'alert alert-error', hidden: true, id: 'prizes-error' });
    const prizesBody = h('tbody', null, emptyRow(11, t('loading')));
    const activitySelect = h('select', { id: 'prize-activity', onchange: (e) => { f.activity = e.target.value; } },
      h('option', { value: '' }, t('p.allActivities')));
    const userInput = h('input', { id: 'prize-user', type: 'text', value: f.user, autocomplete: 'off', oninput: (e) => { f.user = e.target.value; } });
    const statusSelect = h('select', { id: 'prize-status', onchange: (e) => { f.status = e.target.value; } },
      h('option', { value: '' }, t('f.all')),
      PRIZE_STATUSES.map((st) => h('option', { value: st, selected: st === f.status }, label('st.prize', st))));
    const pagerInfo = h('span', { class: 'muted small', id: 'prizes-page-info' });
    const prev = h('button', { type: 'button', class: 'btn btn-small', id: 'prizes-prev', disabled: true }, t('pager.prev'));
    const next = h('button', { type: 'button', class: 'btn btn-small', id: 'prizes-next', disabled: true }, t('pager.next'));

    const filterForm = h('form', { id: 'prize-filters', novalidate: true },
      h('div', { class: 'form-grid' },
        field('p.activity', activitySelect),
        field('p.user', userInput),
        field('p.status', statusSelect),
        h('div', { class: 'form-actions' },
          h('button', { type: 'submit', class: 'btn btn-primary', id: 'prize-apply' }, t('f.apply')))));

    add(ctx.el,
      h('div', { class: 'page-head' }, h('h1', null, t('p.title'))),
      h('section', { class: 'card' },
        h('h2', null, t('p.activities')),
        activitiesError,
        tableWrap(h('table', { id: 'activities-table' },
          thead(['col.name', 'col.merchant', 'col.type', 'col.range', ['col.budget', 'num'], ['col.committed', 'num'],
            ['col.budgetLeft', 'num'], ['col.perUserDaily', 'num'], 'col.follow', 'col.prizes']),
          activitiesBody))),
      h('section', { class: 'card' },
        h('h2', null, t('p.prizes')),
        filterForm,
        prizesError,
        tableWrap(h('table', { id: 'prizes-table' },
          thead(['col.created', 'col.activity', 'col.user', 'col.type', ['col.amount', 'num'], 'col.claimState',
            'col.userMessage', 'col.lastErr', ['col.claims', 'num'], 'col.openid', 'col.redpack']),
          prizesBody)),
        h('div', { class: 'pager' }, pagerInfo, h('div', { class: 'pager-buttons' }, prev, next))));

    async function loadActivities() {
      try {
        const data = await api('/v1/activities', { query: { limit: 1000 } });
        if (!ctx.alive()) return;
        const list = data.objects || [];
        fill(activitySelect,
          h('option', { value: '' }, t('p.allActivities')),
          list.map((a) => h('option', { value: a.id, selected: a.id === f.activity }, a.name)));
        if (!list.length) {
          fill(activitiesBody, emptyRow(10, t('p.noActivities')));
          return;
        }
        syncRows(activitiesBody, list, (a) => [
          [a.name, () => h('strong', null, a.name)],
          [a.merchant, () => a.merchant],
          [[a.type, a.scene_id], () => [label('type', a.type), a.scene_id ? h('div', { class: 'muted small mono' }, a.scene_id) : null]],
          [[a.min_amount, a.max_amount], () => `${yuan(a.min_amount)} – ${yuan(a.max_amount)}`, 'nowrap'],
          [a.budget, () => (a.budget == null ? t('p.noLimit') : yuan(a.budget)), 'num'],
          [a.committed, () => yuan(a.committed), 'num'],
          [a.budget_left, () => (a.budget_left == null ? '—' : yuan(a.budget_left)), 'num'],
          [a.per_user_daily, () => (a.per_user_daily == null ? t('p.noLimit') : String(a.per_user_daily)), 'num'],
          [a.require_follow, () => t(a.require_follow ? 'yes' : 'no')],
          [[a.prizes, a.prize_amounts], () => prizeChips(a.prizes, a.prize_amounts)],
        ], (aid) => {
          f.activity = aid;
          activitySelect.value = aid;
          state.prizeApplied = { ...f };
          state.prizeOffset = 0;
          loadPrizes();
        });
      } catch (err) {
        if (err.unauthorized || !ctx.alive()) return;
        showAlert(activitiesError, errorText(err));
      }
    }

    let seq = 0;
    let meta = null;
    async function loadPrizes() {
      const mySeq = ++seq;
      const a = state.prizeApplied;
      try {
        const data = await api('/v1/prizes', {
          query: { activity: a.activity, user: a.user.trim(), status: a.status, offset: state.prizeOffset, limit: PAGE_SIZE },
        });
        if (!ctx.alive() || mySeq !== seq) return;
        meta = data.meta;
        showAlert(prizesError, '');
        prev.disabled = !meta.previous;
        next.disabled = !meta.next;
        setText(pagerInfo, meta.total_count === 0
          ? t('pager.none')
          : t('pager.info', { from: meta.offset + 1, to: Math.min(meta.offset + meta.limit, meta.total_count), total: meta.total_count }));
        if (!data.objects.length) {
          fill(prizesBody, emptyRow(11, t('p.noPrizes')));
          return;
        }
        syncRows(prizesBody, data.objects, (p) => [
          [p.created_at, () => timeEl(p.created_at)],
          [p.activity, () => p.activity],
          [p.user, () => mono(p.user)],
          [p.type, () => label('ptype', p.type)],
          [p.amount, () => yuan(p.amount), 'num'],
          [p.status, () => statusBadge('prize', p.status)],
          [[p.message, p.zh_message], () => (state.lang === 'zh' ? p.zh_message : p.message) || dash(), 'wrap'],
          [p.last_err_code, () => mono(p.last_err_code)],
          [p.claims, () => String(p.claims), 'num'],
          [[p.claimed_openid, p.openid], () => mono(p.claimed_openid || p.openid)],
          [[p.redpack_id, p.redpack_status], () => (p.redpack_id
            ? [h('a', { href: `#/payouts/${enc(p.redpack_id)}`, class: 'mono' }, p.mch_billno || p.redpack_id),
              p.redpack_status ? [' ', statusBadge('record', p.redpack_status)] : null]
            : dash())],
        ]);
      } catch (err) {
        if (err.unauthorized || !ctx.alive() || mySeq !== seq) return;
        showAlert(prizesError, errorText(err));
      }
    }

    filterForm.addEventListener('submit', (e) => {
      e.preventDefault();
      state.prizeApplied = { ...f };
      state.prizeOffset = 0;
      loadPrizes();
    });
    prev.addEventListener('click', () => {
      if (!meta) return;
      state.prizeOffset = Math.max(0, meta.offset - meta.limit);
      loadPrizes();
    });
    next.addEventListener('click', () => {
      if (!meta) return;
      state.prizeOffset = meta.offset + meta.limit;
      loadPrizes();
    });

    await Promise.all([loadActivities(), loadPrizes()]);
  }

  function prizeChips(counts, amounts) {
    const keys = statusOrder(Object.keys(counts || {}), PRIZE_STATUSES);
    if (!keys.length) return dash();
    return h('div', { class: 'chips' }, keys.map((k) => h('span', { class: 'chip' },
      statusBadge('prize', k), ' ', counts[k], ' · ', yuan((amounts || {})[k] || 0))));
  }

  // =========================================================================
  // Start.
  // =========================================================================

  window.addEventListener('hashchange', () => {
    renderView();
    window.scrollTo(0, 0);
  });
  // A key removed in another way (e.g. devtools) is noticed on next focus.
  window.addEventListener('focus', () => {
    if (session.key() === null && byId('sign-out')) renderApp();
  });
  renderApp();
})();
