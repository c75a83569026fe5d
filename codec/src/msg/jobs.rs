//! The jobs a message names, flat: what `replay --json` shows as `job_ids` and the
//! Wireshark dissector as `slurm.job_id` (one per sib message, kill or submit
//! reply; CTLD_MULT_MSG items in order). Sentinels and 0 ("no job") are left out.

use super::common::JobId;
use super::{ItemContent, Message};

impl Message {
    pub fn job_ids(&self) -> Vec<JobId> {
        let one = |j: Option<JobId>| {
            j.filter(|j| j.0 != 0 && !j.is_sentinel())
                .into_iter()
                .collect()
        };
        match self {
            Message::CtldMultRequest(m) | Message::CtldMultResponse(m) => m
                .items
                .iter()
                .flat_map(|i| match &i.content {
                    ItemContent::Typed(m) => m.job_ids(),
                    ItemContent::Raw { .. } => Vec::new(),
                })
                .collect(),
            Message::SibMsg(s) | Message::SibJobLock(s) | Message::SibJobUnlock(s) => one(s.job()),
            Message::CancelJobStep(k) | Message::KillJob(k) => one(k.job()),
            Message::SubmitResponse(r) => one(Some(r.step_id.job_id)),
            _ => Vec::new(),
        }
    }
}
