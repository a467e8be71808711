//! The path's round trip, as the retire margin uses it: the kernel's
//! figures and the client's own measurements.

use std::time::Duration;

use super::IdleEstimator;
use crate::margin::Rtt;

impl IdleEstimator {
    /// Records the kernel's round-trip figures for the path to the origin
    /// (`TCP_INFO`); the latest wins, as the kernel smooths them already.
    pub fn observe_rtt(&mut self, rtt: Rtt) {
        self.memo.set(None);
        self.rtt = Some(rtt);
    }

    /// Records a round trip the client measured itself (a connect, or a
    /// request's last byte to its response's head). Each sample includes
    /// the server's own time, so the path is its shortest sample (`srtt`),
    /// and its jitter the smoothed deviation from that (as RFC 6298 smooths
    /// it, `rttvar ← ¾·rttvar + ¼·deviation`), each sample counting at
    /// most [`max_deviation`](crate::Tuning::max_deviation): a response that took a second is the
    /// server's second, not the path's. The margin takes these or the
    /// kernel's figures, whichever bound is longer (see [`rtt`](Self::rtt)).
    pub fn observe_round_trip(&mut self, sample: Duration) {
        self.memo.set(None);
        self.measured = Some(match self.measured {
            None => Rtt {
                srtt: sample,
                rttvar: (sample / 2).min(self.config.tuning.max_deviation),
            },
            Some(Rtt { srtt, rttvar }) => {
                let srtt = srtt.min(sample);
                let deviation = (sample - srtt).min(self.config.tuning.max_deviation);
                Rtt {
                    srtt,
                    rttvar: rttvar - rttvar / 4 + deviation / 4,
                }
            }
        });
    }

    /// The path's round trip as the margin uses it: the kernel's figures
    /// or the smoothed measured ones, whichever [bound](Rtt::bound) is
    /// longer.
    ///
    /// The kernel sees the wire only. A request also waits for the client's
    /// runtime to write it and for the server's to read it, and the client's
    /// idle clock starts only when its runtime read the last byte: on
    /// loopback or a LAN those delays are most of the race, and only a
    /// measured request-to-response time sees them (and their jitter).
    pub fn rtt(&self) -> Option<Rtt> {
        match (self.rtt, self.measured) {
            (Some(kernel), Some(measured)) if measured.bound() > kernel.bound() => Some(measured),
            (kernel, measured) => kernel.or(measured),
        }
    }

    /// The smoothed measured round trip alone (see
    /// [`observe_round_trip`](Self::observe_round_trip)).
    pub fn measured_rtt(&self) -> Option<Rtt> {
        self.measured
    }

    /// Whether a measured round trip is news for the smoothed figures
    /// ([`Rtt::is_news`]), or nothing was measured yet.
    pub fn round_trip_is_news(&self, sample: Duration) -> bool {
        let max_deviation = self.config.tuning.max_deviation;
        self.measured
            .is_none_or(|rtt| rtt.is_news(sample, max_deviation))
    }
}
