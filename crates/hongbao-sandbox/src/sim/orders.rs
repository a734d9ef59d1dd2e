//! The red packet orders WeChat created: their shares and lifecycle
//! (derived from the clock), sending with idempotency per mch_billno and
//! the daily limits, refunds, and `gethbinfo`.

use hongbao_wxpay::xml;
use hongbao_wxpay::{Api, HbStatus, Params, format_beijing_time};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::journal::Event;
use super::rules::refuse;
use super::{FaultKind, Reply, Simulator, bump};
use crate::settings::Lifecycle;

/// One opened or unopened share of a red packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Who opened it (the receiver of a normal packet; a made-up user for
    /// the other shares of a fission packet).
    pub openid: Option<String>,
    /// Its amount in fen.
    pub amount: u64,
    /// When it is (or will be) opened, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub opened_at: Option<OffsetDateTime>,
}

/// A red packet order WeChat created, keyed by mch_billno.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The merchant's order number.
    pub mch_billno: String,
    /// The API that created it.
    pub api: Api,
    /// The receiver (the seed user of a fission packet; empty for a pre-order).
    pub re_openid: String,
    /// The amount in fen.
    pub total_amount: u64,
    /// The number of shares.
    pub total_num: u32,
    /// The texts, for `gethbinfo`.
    pub wishing: String,
    /// The activity's name.
    pub act_name: String,
    /// The remark.
    pub remark: String,
    /// WeChat's order number (also `detail_id`).
    pub send_listid: String,
    /// When it was created (simulated clock).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Why it failed, for an order refused after creation (`FAILED`).
    pub failed_reason: Option<String>,
    /// Until when it stays `SENDING` (after a `PROCESSING` answer).
    #[serde(with = "time::serde::rfc3339::option")]
    pub sending_until: Option<OffsetDateTime>,
    /// The shares.
    pub shares: Vec<Share>,
    /// When unopened money starts being refunded.
    #[serde(with = "time::serde::rfc3339")]
    pub refund_at: OffsetDateTime,
    /// Whether the refund went back to the balance.
    pub refunded: bool,
    /// How many times this mch_billno was requested (first call and replays).
    pub requests: u32,
    /// The mini program's `package`.
    pub package: Option<String>,
    /// The Shake-Nearby ticket of a pre-order.
    pub sp_ticket: Option<String>,
}

/// The state of an order at a given moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderState {
    /// `gethbinfo`'s status.
    pub status: HbStatus,
    /// Refunded fen, once refunding began.
    pub refund_amount: Option<u64>,
    /// When the refund completed.
    pub refund_time: Option<OffsetDateTime>,
    /// Shares opened so far.
    pub opened: Vec<Share>,
}

impl Order {
    fn paid(&self) -> bool {
        self.failed_reason.is_none()
    }

    /// The order's state at `now`.
    pub fn state_at(&self, now: OffsetDateTime, lifecycle: &Lifecycle) -> OrderState {
        if self.failed_reason.is_some() {
            return OrderState {
                status: HbStatus::Failed,
                refund_amount: None,
                refund_time: None,
                opened: Vec::new(),
            };
        }
        if self.sending_until.is_some_and(|until| now < until) {
            return OrderState {
                status: HbStatus::Sending,
                refund_amount: None,
                refund_time: None,
                opened: Vec::new(),
            };
        }
        let opened: Vec<Share> = self
            .shares
            .iter()
            .filter(|s| s.opened_at.is_some_and(|t| t <= now && t < self.refund_at))
            .cloned()
            .collect();
        if opened.len() == self.shares.len() {
            return OrderState {
                status: HbStatus::Received,
                refund_amount: None,
                refund_time: None,
                opened,
            };
        }
        if now < self.refund_at {
            return OrderState {
                status: HbStatus::Sent,
                refund_amount: None,
                refund_time: None,
                opened,
            };
        }
        let unopened: u64 = self.total_amount - opened.iter().map(|s| s.amount).sum::<u64>();
        let done_at = self.refund_at + lifecycle.refunding_for;
        if now < done_at {
            OrderState {
                status: HbStatus::Refunding,
                refund_amount: Some(unopened),
                refund_time: None,
                opened,
            }
        } else {
            OrderState {
                status: HbStatus::Refund,
                refund_amount: Some(unopened),
                refund_time: Some(done_at),
                opened,
            }
        }
    }
}

impl Simulator {
    /// Puts an order in the ledger, with its effect on the balance and the
    /// daily counters (the same code live and when replaying the journal).
    pub(super) fn apply_order(&mut self, order: Order) {
        let previous = self.orders.get(&order.mch_billno);
        let is_new = previous.is_none();
        let newly_refunded = !previous.is_some_and(|p| p.refunded) && order.refunded;
        if is_new && order.paid() {
            self.balance = self.balance.saturating_sub(order.total_amount);
            let day = hongbao_wxpay::beijing_date(order.created_at);
            *self.daily_merchant.entry(day).or_default() += order.total_amount;
            if !order.re_openid.is_empty() {
                let entry = self
                    .daily_user
                    .entry((day, order.re_openid.clone()))
                    .or_default();
                entry.0 += 1;
                entry.1 += order.total_amount;
            }
            if !order.refunded {
                let done_at = order.refund_at + self.lifecycle.refunding_for;
                self.refund_queue
                    .insert((done_at, order.mch_billno.clone()));
            }
        }
        if newly_refunded {
            let state = order.state_at(
                order.refund_at + self.lifecycle.refunding_for,
                &self.lifecycle,
            );
            self.balance += state.refund_amount.unwrap_or(0);
            self.refund_queue
                .retain(|(_, billno)| billno != &order.mch_billno);
        }
        let listid_seq = order
            .send_listid
            .get(18..)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        self.next_listid = self.next_listid.max(listid_seq + 1);
        self.orders.insert(order.mch_billno.clone(), order);
    }

    /// Credits the refunds of unopened packets whose refund completed.
    pub(super) fn settle(&mut self, now: OffsetDateTime) {
        while let Some((done_at, billno)) = self.refund_queue.first().cloned() {
            if done_at > now {
                break;
            }
            self.refund_queue.pop_first();
            let Some(order) = self.orders.get(&billno).cloned() else {
                continue;
            };
            let state = order.state_at(done_at, &self.lifecycle);
            if state.refund_amount.unwrap_or(0) > 0 {
                let mut refunded = order;
                refunded.refunded = true;
                self.record(&Event::Order(Box::new(refunded.clone())));
                self.apply_order(refunded);
            }
        }
    }

    pub(super) fn send(&mut self, api: Api, p: &Params) -> Reply {
        let now = self.now();
        self.settle(now);
        let billno = p.get("mch_billno").unwrap_or_default().to_owned();
        let openid = p.get("re_openid").unwrap_or_default().to_owned();
        let amount: u64 = p
            .get("total_amount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);

        if let Some(existing) = self.orders.get(&billno).cloned() {
            // Re-entry by mch_billno: the same order, never a second payment.
            if existing.api != api || existing.re_openid != openid {
                return self.failure(p, refuse("FATAL_ERROR", "该订单号已使用不同的参数发放"));
            }
            if existing.total_amount != amount {
                return self.failure(p, refuse("FATAL_ERROR", "金额和原始单参数不一致"));
            }
            let mut replayed = existing;
            replayed.requests += 1;
            self.record(&Event::Order(Box::new(replayed.clone())));
            self.apply_order(replayed.clone());
            let state = replayed.state_at(now, &self.lifecycle);
            return match state.status {
                HbStatus::Failed => self.failure(
                    p,
                    refuse("SEND_FAILED", "该红包已经发放失败，请更换单号重新发放"),
                ),
                HbStatus::Sending => self.failure(
                    p,
                    refuse("PROCESSING", "请求已受理，请稍后使用原单号查询发放结果"),
                ),
                _ => self.after_commit(api, p, &replayed, None),
            };
        }

        let fault = self.draw_fault();
        if fault == Some(FaultKind::SystemerrorBefore) {
            self.count_fault(FaultKind::SystemerrorBefore.as_str());
            // Both shapes WeChat has used for "busy": a protocol-level FAIL and SYSTEMERROR.
            if self.rng.random_range(0..2u8) == 0 {
                return Reply::Body(xml::to_xml_pairs([
                    ("return_code", "FAIL"),
                    ("return_msg", "系统繁忙,请稍后再试."),
                ]));
            }
            return self.failure(p, refuse("SYSTEMERROR", "系统繁忙,请稍后再试."));
        }

        let day = hongbao_wxpay::beijing_date(now);
        let merchant_today = self.daily_merchant.get(&day).copied().unwrap_or(0);
        if merchant_today + amount > self.rules.send_amount_limit.get() {
            return self.failure(
                p,
                refuse(
                    "SENDAMOUNT_LIMIT",
                    "您的商户号今日发放金额超过限制，如有需要请登录微信支付商户平台更改API安全配置",
                ),
            );
        }
        if self.balance < amount {
            let refusal = refuse("NOTENOUGH", "帐号余额不足，请到商户平台充值后再重试");
            if self.rules.notenough_fails_order {
                let order = self.new_order(api, p, now, Some(refusal.des.clone()), None);
                self.record(&Event::Order(Box::new(order.clone())));
                self.apply_order(order);
            }
            return self.failure(p, refusal);
        }
        if !openid.is_empty() {
            let (count, received) = self
                .daily_user
                .get(&(day, openid))
                .copied()
                .unwrap_or((0, 0));
            let limit = if count >= self.rules.sendnum_limit {
                Some(refuse("SENDNUM_LIMIT", "该用户今日领取红包个数超过限制"))
            } else if received + amount > self.rules.rcvd_amount_limit.get() {
                Some(refuse("RCVDAMOUNT_LIMIT", "该用户今日领取金额超过限制"))
            } else {
                None
            };
            if let Some(refusal) = limit {
                // The order exists, FAILED with the reason, so gethbinfo confirms it.
                let order = self.new_order(api, p, now, Some(refusal.des.clone()), None);
                self.record(&Event::Order(Box::new(order.clone())));
                self.apply_order(order);
                return self.failure(p, refusal);
            }
        }

        let sending_for = if fault == Some(FaultKind::Processing) {
            self.lifecycle.processing_for
        } else {
            self.lifecycle.sending_for
        };
        let sending_until = (!sending_for.is_zero()).then(|| now + sending_for);
        let order = self.new_order(api, p, now, None, sending_until);
        self.record(&Event::Order(Box::new(order.clone())));
        self.apply_order(order.clone());
        self.after_commit(api, p, &order, fault)
    }

    pub(super) fn new_order(
        &mut self,
        api: Api,
        p: &Params,
        now: OffsetDateTime,
        failed_reason: Option<String>,
        sending_until: Option<OffsetDateTime>,
    ) -> Order {
        let amount: u64 = p
            .get("total_amount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let num: u32 = match api {
            Api::SendWorkWxRedpack => 1,
            _ => p.get("total_num").and_then(|v| v.parse().ok()).unwrap_or(1),
        };
        let seq = self.next_listid;
        self.next_listid += 1;
        let day = hongbao_wxpay::beijing_date(now);
        let send_listid = format!(
            "1000041701{:04}{:02}{:02}{seq:013}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        let re_openid = p.get("re_openid").unwrap_or_default().to_owned();
        let amounts = if num > 1 {
            self.split(amount, num)
        } else {
            vec![amount]
        };
        let opened_from = sending_until.unwrap_or(now);
        let mut shares = Vec::with_capacity(amounts.len());
        for (i, amount) in amounts.into_iter().enumerate() {
            let opens = self.draw(self.lifecycle.receive_probability);
            let step = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let opened_at = opens.then(|| opened_from + self.lifecycle.receive_after * step);
            let openid = if i == 0 && !re_openid.is_empty() {
                Some(re_openid.clone())
            } else if opened_at.is_some() {
                Some(self.random_openid())
            } else {
                None
            };
            shares.push(Share {
                openid,
                amount,
                opened_at,
            });
        }
        let package = (api == Api::SendMiniProgramHb).then(|| {
            format!(
                "sendid={}&ver=8&sign={}&mchid={}&appid={}",
                self.random_hex(64),
                self.random_hex(128),
                self.secrets.mch_id,
                self.secrets.miniprogram_appid
            )
        });
        let sp_ticket = (api == Api::HbPreorder).then(|| self.random_hex(64));
        Order {
            mch_billno: p.get("mch_billno").unwrap_or_default().to_owned(),
            api,
            re_openid,
            total_amount: amount,
            total_num: num,
            wishing: p.get("wishing").unwrap_or_default().to_owned(),
            act_name: p.get("act_name").unwrap_or_default().to_owned(),
            remark: p.get("remark").unwrap_or_default().to_owned(),
            send_listid,
            created_at: now,
            failed_reason,
            sending_until,
            shares,
            refund_at: opened_from + self.lifecycle.refund_after,
            refunded: false,
            requests: 1,
            package,
            sp_ticket,
        }
    }

    /// Splits `amount` into `num` random shares of at least 1 yuan and at
    /// most 1000 yuan each.
    pub(super) fn split(&mut self, amount: u64, num: u32) -> Vec<u64> {
        const MIN: u64 = 100;
        const MAX: u64 = 100_000;
        let n = usize::try_from(num).unwrap_or(1);
        let spare = amount.saturating_sub(MIN * u64::from(num));
        let mut cuts: Vec<u64> = (1..n).map(|_| self.rng.random_range(0..=spare)).collect();
        cuts.push(0);
        cuts.push(spare);
        cuts.sort_unstable();
        let mut shares: Vec<u64> = cuts.windows(2).map(|w| MIN + w[1] - w[0]).collect();
        // Move any excess over the cap to the smallest shares (bounded: n rounds).
        for _ in 0..n {
            let Some(big) = shares.iter().position(|s| *s > MAX) else {
                break;
            };
            let excess = shares[big] - MAX;
            shares[big] = MAX;
            let small = shares
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| **s)
                .map(|(i, _)| i)
                .unwrap_or(0);
            shares[small] += excess;
        }
        shares
    }

    pub(super) fn query(&mut self, api: Api, p: &Params) -> Reply {
        let now = self.now();
        self.settle(now);
        // Only the faults that mean something for a read apply to queries.
        match self.draw_fault() {
            Some(FaultKind::SystemerrorBefore) => {
                bump(&mut self.counters.faults, "systemerror_query");
                return self.failure(p, refuse("SYSTEMERROR", "系统繁忙,请稍后再试."));
            }
            Some(FaultKind::Garbage) => {
                self.count_fault(FaultKind::Garbage.as_str());
                return Reply::Garbage(self.garbage());
            }
            _ => {}
        }
        let billno = p.get("mch_billno").unwrap_or_default();
        let Some(order) = self.orders.get(billno) else {
            return self.failure(p, refuse("NOT_FOUND", "指定单号数据不存在"));
        };
        let state = order.state_at(now, &self.lifecycle);
        let mut fields: Vec<(&'static str, String)> = vec![
            ("mch_billno", order.mch_billno.clone()),
            ("mch_id", self.secrets.mch_id.clone()),
            ("detail_id", order.send_listid.clone()),
            ("status", state.status.as_str().to_owned()),
            ("send_type", "API".to_owned()),
        ];
        if api == Api::GetHbInfo {
            let hb_type = if order.api == Api::SendGroupRedpack || order.total_num > 1 {
                "GROUP"
            } else {
                "NORMAL"
            };
            fields.push(("hb_type", hb_type.to_owned()));
            fields.push(("total_num", order.total_num.to_string()));
        }
        fields.push(("total_amount", order.total_amount.to_string()));
        if let Some(reason) = &order.failed_reason {
            fields.push(("reason", reason.clone()));
        }
        fields.push(("send_time", format_beijing_time(order.created_at)));
        if let Some(t) = state.refund_time {
            fields.push(("refund_time", format_beijing_time(t)));
        }
        if let Some(amount) = state.refund_amount {
            fields.push(("refund_amount", amount.to_string()));
        }
        fields.push(("wishing", order.wishing.clone()));
        fields.push(("remark", order.remark.clone()));
        fields.push(("act_name", order.act_name.clone()));
        if api == Api::QueryWorkWxRedpack {
            if let Some(share) = state.opened.first() {
                fields.push(("openid", share.openid.clone().unwrap_or_default()));
                fields.push(("amount", share.amount.to_string()));
                fields.push((
                    "rcv_time",
                    share.opened_at.map(format_beijing_time).unwrap_or_default(),
                ));
            }
            return self.envelope_success(api, fields);
        }
        // gethbinfo nests the receivers, which the flat writer cannot: splice them in.
        let Reply::Body(flat) = self.envelope_success(api, fields) else {
            unreachable!("success is a body")
        };
        if state.opened.is_empty() {
            return Reply::Body(flat);
        }
        let mut list = String::from("<hblist>");
        for share in &state.opened {
            let item = xml::to_xml_pairs([
                ("openid", share.openid.as_deref().unwrap_or_default()),
                ("amount", share.amount.to_string().as_str()),
                (
                    "rcv_time",
                    share
                        .opened_at
                        .map(format_beijing_time)
                        .unwrap_or_default()
                        .as_str(),
                ),
            ]);
            list.push_str(
                &item
                    .replacen("<xml>", "<hbinfo>", 1)
                    .replace("</xml>", "</hbinfo>"),
            );
        }
        list.push_str("</hblist></xml>");
        Reply::Body(flat.replace("</xml>", &list))
    }

    /// Every order, with its state now.
    pub fn ledger(&mut self) -> Vec<(Order, OrderState)> {
        let now = self.now();
        self.settle(now);
        let mut orders: Vec<(Order, OrderState)> = self
            .orders
            .values()
            .map(|o| (o.clone(), o.state_at(now, &self.lifecycle)))
            .collect();
        orders.sort_by(|a, b| {
            (a.0.created_at, &a.0.mch_billno).cmp(&(b.0.created_at, &b.0.mch_billno))
        });
        orders
    }

    /// One order, with its state now.
    pub fn order(&mut self, mch_billno: &str) -> Option<(Order, OrderState)> {
        let now = self.now();
        self.settle(now);
        self.orders
            .get(mch_billno)
            .map(|o| (o.clone(), o.state_at(now, &self.lifecycle)))
    }
}
