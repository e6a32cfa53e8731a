//! What both MQTT versions do with what a device sends, in one place: check its credentials,
//! check each publish, keep the invalid ones in the rejected table, commit the valid ones
//! together, and say what became of each. The versions only turn the answer into their packets.

use std::net::SocketAddr;

use bytes::Bytes;
use emberline_core::Protocol;
use time::OffsetDateTime;

use super::session::Close;
use super::{Checked, MqttContext, check};
use crate::buffer::{BufferError, Incoming, Rejected};

/// A PUBLISH at QoS 0 or 1, whatever the version.
#[derive(Debug)]
pub struct Inbound {
    /// The packet identifier of a QoS 1 publish (it wants a PUBACK); `None` at QoS 0.
    pub pkid: Option<u16>,
    pub topic: String,
    pub payload: Bytes,
}

/// What became of one publish; a PUBACK (3.1.1) or its reason code (5) follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed to the buffer.
    Stored,
    /// Kept in the rejected table: the topic is not `sensors/{source_name}/readings`.
    BadTopic(String),
    /// Kept in the rejected table: the payload is not a valid reading for this topic.
    Invalid(String),
    /// Not stored: the buffer is full.
    Full,
    /// Not stored: the buffer failed to commit.
    Failed,
}

/// Why a CONNECT is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Device tokens are configured and the client sent no username.
    NoCredentials,
    /// The username and password are not a configured device's.
    BadCredentials,
}

#[derive(Debug, Clone, Copy)]
pub struct Ingest<'a> {
    pub context: &'a MqttContext,
    pub peer: SocketAddr,
}

impl<'a> Ingest<'a> {
    pub fn new(context: &'a MqttContext, peer: SocketAddr) -> Self {
        Self { context, peer }
    }

    /// Most publishes read before their PUBACKs are written (MQTT 5: the receive maximum).
    pub fn max_inflight(&self) -> usize {
        self.context.config.inflight_limit()
    }

    /// Checks a CONNECT's username and password when device tokens are configured.
    pub fn authorize(&self, login: Option<(&str, &[u8])>) -> Result<(), Denied> {
        let Some(tokens) = &self.context.tokens else {
            return Ok(());
        };
        let verdict = match login {
            None => Err(Denied::NoCredentials),
            Some((name, password)) if tokens.check_password(name, password) => Ok(()),
            Some(_) => Err(Denied::BadCredentials),
        };
        if verdict.is_err() {
            self.context.metrics.reading("mqtt", "unauthorized", 1);
        }
        verdict
    }

    /// Stores a run of publishes and says what became of each, in order. Invalid ones are in
    /// the rejected table before this returns, valid ones committed together: a PUBACK written
    /// after this is a promise kept. An error means a rejected publish could not be recorded.
    pub async fn store(
        &self,
        publishes: Vec<Inbound>,
    ) -> Result<Vec<(Option<u16>, Outcome)>, Close> {
        let now = OffsetDateTime::now_utc();
        let limits = &self.context.limits;
        let mut incoming = Vec::new();
        let mut outcomes = Vec::with_capacity(publishes.len());
        for publish in publishes {
            let outcome = match check(&publish.topic, &publish.payload, limits, now) {
                Checked::Reading(reading) => {
                    incoming.push(Incoming {
                        reading: *reading,
                        protocol: Protocol::Mqtt,
                        received_at: now,
                    });
                    Outcome::Stored
                }
                Checked::BadTopic(reason) => {
                    self.reject(&publish, &reason).await?;
                    Outcome::BadTopic(reason)
                }
                Checked::Rejected(reason) => {
                    self.reject(&publish, &reason).await?;
                    Outcome::Invalid(reason)
                }
            };
            outcomes.push((publish.pkid, outcome));
        }
        let committed = self.commit(incoming).await;
        if committed != Outcome::Stored {
            for (_, outcome) in &mut outcomes {
                if *outcome == Outcome::Stored {
                    *outcome = committed.clone();
                }
            }
        }
        Ok(outcomes)
    }

    /// Commits the valid readings of a run together and announces the high ones on the alert bus.
    async fn commit(&self, incoming: Vec<Incoming>) -> Outcome {
        let n = incoming.len() as u64;
        if n == 0 {
            return Outcome::Stored;
        }
        let alerts = self.context.alerts.as_ref();
        let pending = crate::alerts::prepare_all(alerts, incoming.iter().map(|i| &i.reading));
        match self.context.buffer.append(incoming).await {
            Ok(accepted) => {
                self.context.metrics.reading("mqtt", "accepted", n);
                crate::alerts::publish_all(alerts, pending, &accepted);
                Outcome::Stored
            }
            Err(BufferError::Full) => {
                self.context.metrics.reading("mqtt", "full", n);
                Outcome::Full
            }
            Err(error) => {
                self.context.metrics.reading("mqtt", "error", n);
                tracing::warn!(peer = %self.peer, %error, "MQTT publishes not committed");
                Outcome::Failed
            }
        }
    }

    async fn reject(&self, publish: &Inbound, reason: &str) -> Result<(), Close> {
        self.context.metrics.reading("mqtt", "invalid", 1);
        let rejected = Rejected {
            protocol: Protocol::Mqtt,
            origin: format!("{} {}", self.peer, publish.topic),
            payload: publish.payload.to_vec(),
            reason: reason.to_owned(),
        };
        self.context.buffer.reject(rejected).await.map_err(|error| {
            tracing::warn!(peer = %self.peer, %error, "cannot record a rejected publish");
            Close::BufferFailed
        })
    }
}
