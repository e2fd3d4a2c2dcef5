//! The main test's summary: what each phase sent and got, and what failed.

use crate::judge::Tally;

/// The tallies of the four phases of malformed requests.
pub struct Phases {
    pub api: Tally,
    pub proto: Tally,
    pub big: Tally,
    pub cut: Tally,
}

impl Phases {
    fn all(&self) -> [(&'static str, &Tally); 4] {
        [
            ("API", &self.api),
            ("protocol", &self.proto),
            ("oversize", &self.big),
            ("truncated", &self.cut),
        ]
    }

    /// Prints the counts; `silent`: cut-short requests the sidecar closed without an answer.
    pub fn print(&self, silent: usize) {
        let (api, proto, big, cut) = (&self.api, &self.proto, &self.big, &self.cut);
        let all = self.all();
        let sent_bad: usize = all.iter().map(|(_, t)| t.sent).sum();
        let json_num: usize = all.iter().map(|(_, t)| t.json).sum();
        let json_den: usize = all.iter().map(|(_, t)| t.with_body_expected).sum();
        println!(
            "T3: {sent_bad} bad requests ({} API, {} protocol, {} oversize, {} truncated of which {silent} closed silently); JSON errorCode on {json_num}/{json_den} answers with a body ({:.2}%)",
            api.sent,
            proto.sent,
            big.sent,
            cut.sent,
            100.0 * json_num as f64 / json_den.max(1) as f64
        );
        for (label, (sent, ok)) in &api.by_label {
            println!("T3 API {label:<36} sent {sent:>4}, as required {ok:>4}");
        }
        println!("T3 API statuses {:?}; codes {:?}", api.statuses, api.codes);
        println!(
            "T3 protocol statuses {:?}; JSON {}/{}",
            proto.statuses, proto.json, proto.with_body_expected
        );
        println!(
            "T3 oversize statuses {:?}; codes {:?}; chunked invocations broken off mid-answer {}",
            big.statuses, big.codes, big.incomplete
        );
        println!(
            "T3 truncated statuses {:?}; codes {:?}",
            cut.statuses, cut.codes
        );
    }

    /// One entry per phase with failures.
    pub fn failures(&self) -> Vec<String> {
        self.all()
            .iter()
            .filter(|(_, t)| !t.failures.is_empty())
            .map(|(name, t)| format!("{name}:\n{}", t.failure_report()))
            .collect()
    }
}
