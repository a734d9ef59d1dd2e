//! Fault injection: which fault hits a call (reproducible with the seed),
//! added latency, and what a fault does to an answer after the commit.

use hongbao_wxpay::{Api, Params};
use rand::RngExt;

use super::orders::Order;
use super::rules::refuse;
use super::{Reply, Simulator, bump};
use serde::{Deserialize, Serialize};

use crate::settings::{Faults, Probability};

/// A fault that replaces a call's normal answer. At most one hits a call;
/// latency comes on top. An enum, not a string: a misspelt kind cannot
/// compile, and a misspelt setting is refused when read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A busy answer before anything is committed (nothing paid).
    SystemerrorBefore,
    /// Committed (money moved or bill created), then a busy answer.
    SystemerrorAfter,
    /// Committed, then the connection closes without an answer.
    DropAfter,
    /// Committed, but still in progress: `PROCESSING` for a red packet, a
    /// bill left `PROCESSING` for a transfer.
    Processing,
    /// Processed normally, then a body that is not WeChat's.
    Garbage,
}

impl FaultKind {
    /// Every kind, in the order they are drawn.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::SystemerrorBefore,
        FaultKind::SystemerrorAfter,
        FaultKind::DropAfter,
        FaultKind::Processing,
        FaultKind::Garbage,
    ];

    /// The kind's name, as in settings and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::SystemerrorBefore => "systemerror_before",
            FaultKind::SystemerrorAfter => "systemerror_after",
            FaultKind::DropAfter => "drop_after",
            FaultKind::Processing => "processing",
            FaultKind::Garbage => "garbage",
        }
    }

    /// Whether the fault happens before the call is committed.
    pub const fn before_commit(self) -> bool {
        matches!(self, FaultKind::SystemerrorBefore | FaultKind::Processing)
    }

    /// Its probability in `faults`.
    pub fn probability(self, faults: &Faults) -> Probability {
        match self {
            FaultKind::SystemerrorBefore => faults.systemerror_before,
            FaultKind::SystemerrorAfter => faults.systemerror_after,
            FaultKind::DropAfter => faults.drop_after,
            FaultKind::Processing => faults.processing,
            FaultKind::Garbage => faults.garbage,
        }
    }
}

impl Simulator {
    pub(super) fn draw(&mut self, p: Probability) -> bool {
        p.ppm() > 0 && self.rng.random_range(0..Probability::SCALE) < p.ppm()
    }

    /// Which exclusive fault hits this call, if any.
    pub(super) fn draw_fault(&mut self) -> Option<FaultKind> {
        if FaultKind::ALL
            .iter()
            .all(|k| k.probability(&self.faults).ppm() == 0)
        {
            return None;
        }
        let roll = self.rng.random_range(0..Probability::SCALE);
        let mut edge = 0u32;
        for kind in FaultKind::ALL {
            edge += kind.probability(&self.faults).ppm();
            if roll < edge {
                return Some(kind);
            }
        }
        None
    }

    /// Counts an injected fault.
    pub(super) fn count_fault(&mut self, name: &str) {
        bump(&mut self.counters.faults, name);
    }

    pub(super) fn latency(&mut self) -> u64 {
        let latency = self.faults.latency;
        if self.faults.latency_ms > 0 && self.draw(latency) {
            self.count_fault("latency");
            self.faults.latency_ms
        } else {
            0
        }
    }

    pub(super) fn after_commit(
        &mut self,
        api: Api,
        p: &Params,
        order: &Order,
        fault: Option<FaultKind>,
    ) -> Reply {
        // A replay draws its own fault; the first call uses the one drawn before committing.
        let fault = match fault {
            Some(f) => Some(f),
            None if order.requests > 1 => self.draw_fault().filter(|f| !f.before_commit()),
            None => None,
        };
        let Some(fault) = fault else {
            return self.success(api, p, order);
        };
        self.count_fault(fault.as_str());
        match fault {
            FaultKind::SystemerrorAfter => self.failure(
                p,
                refuse("SYSTEMERROR", "请求已受理，请稍后使用原单号查询发放结果"),
            ),
            FaultKind::DropAfter => Reply::Drop,
            FaultKind::Processing => self.failure(
                p,
                refuse("PROCESSING", "请求已受理，请稍后使用原单号查询发放结果"),
            ),
            FaultKind::Garbage => Reply::Garbage(self.garbage()),
            // Drawn before the commit and answered there.
            FaultKind::SystemerrorBefore => self.success(api, p, order),
        }
    }

    pub(super) fn garbage(&mut self) -> Vec<u8> {
        const SAMPLES: [&[u8]; 4] = [
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            b"<xml><return_code><![CDATA[SUCC",
            b"\x00\x01\x02 not xml at all",
            b"{\"error\":\"upstream timeout\"}",
        ];
        SAMPLES[self.rng.random_range(0..SAMPLES.len())].to_vec()
    }
}
