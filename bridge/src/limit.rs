//! The in-flight bytes limit: a semaphore of bytes shared by every request, so the bridge's
//! memory stays bounded however many agents send at once.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limit was reached: the request must be refused (503) rather than queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than the in-flight limit of {limit} bytes would be held")]
pub struct Overloaded {
    pub limit: usize,
}

/// Bytes of request bodies (as received and decompressed) held across all requests.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// One permit per byte; `try_acquire` only, so a full bridge answers at once.
    semaphore: Arc<Semaphore>,
    limit: usize,
}

impl InFlight {
    pub fn new(limit: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Reserves `bytes` now, or fails without waiting.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, Overloaded> {
        let permit = self.acquire(bytes)?;
        Ok(Reservation {
            permit,
            in_flight: self.clone(),
        })
    }

    /// Bytes reserved right now.
    pub fn in_use(&self) -> usize {
        self.limit
            .saturating_sub(self.semaphore.available_permits())
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn acquire(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Overloaded> {
        let overloaded = Overloaded { limit: self.limit };
        let bytes = u32::try_from(bytes).map_err(|_| overloaded)?;
        self.semaphore
            .clone()
            .try_acquire_many_owned(bytes)
            .map_err(|_| overloaded)
    }
}

/// Bytes one request holds; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: OwnedSemaphorePermit,
    in_flight: InFlight,
}

impl Reservation {
    /// Reserves `bytes` more, or fails without waiting (keeping what is held).
    pub fn grow(&mut self, bytes: usize) -> Result<(), Overloaded> {
        let more = self.in_flight.acquire(bytes)?;
        self.permit.merge(more);
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        self.permit.num_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_released_on_drop() {
        let in_flight = InFlight::new(100);
        let mut first = in_flight.reserve(60).unwrap();
        assert_eq!(
            in_flight.reserve(41).unwrap_err(),
            Overloaded { limit: 100 }
        );
        first.grow(40).unwrap();
        assert_eq!(first.bytes(), 100);
        assert!(first.grow(1).is_err());
        assert_eq!(first.bytes(), 100);
        assert_eq!(in_flight.in_use(), 100);
        drop(first);
        assert_eq!(in_flight.in_use(), 0);
        assert!(in_flight.reserve(100).is_ok());
        assert!(in_flight.reserve(usize::MAX).is_err());
    }
}
