//! The few bytes every MQTT version shares, read without IO: how long the packet at the front of a
//! buffer is, and which protocol level a CONNECT asks for. Everything past that is the version's
//! codec (`rumqttc::mqttbytes::v4` or `rumqttc::v5::mqttbytes::v5`).

/// The fixed header of the packet at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bytes taken by the first byte and the remaining-length integer.
    pub header_len: usize,
    /// The remaining length: variable header and payload.
    pub remaining: usize,
}

impl Header {
    /// The whole packet's size on the wire (what MQTT 5 calls the packet size).
    pub fn total(&self) -> usize {
        self.header_len + self.remaining
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the remaining length takes more than four bytes")]
    BadLength,
    #[error("the CONNECT packet is cut short")]
    ShortConnect,
}

/// The fixed header at the front of `buf`; `None` while it is not all there.
pub fn header(buf: &[u8]) -> Result<Option<Header>, FrameError> {
    let Some((_, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let mut remaining = 0usize;
    for (index, &byte) in rest.iter().enumerate() {
        if index == 4 {
            return Err(FrameError::BadLength);
        }
        remaining |= usize::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(Some(Header {
                header_len: index + 2,
                remaining,
            }));
        }
    }
    if rest.len() >= 4 {
        return Err(FrameError::BadLength);
    }
    Ok(None)
}

/// The protocol level of a whole CONNECT packet: 4 for MQTT 3.1.1, 5 for MQTT 5, 3 for 3.1.
pub fn protocol_level(connect: &[u8]) -> Result<u8, FrameError> {
    let start = header(connect)?.ok_or(FrameError::ShortConnect)?.header_len;
    let name_len = match connect.get(start..start + 2) {
        Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
        _ => return Err(FrameError::ShortConnect),
    };
    connect
        .get(start + 2 + name_len)
        .copied()
        .ok_or(FrameError::ShortConnect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_when_complete() {
        assert_eq!(header(&[]), Ok(None));
        assert_eq!(header(&[0x30]), Ok(None));
        assert_eq!(header(&[0x30, 0x80]), Ok(None));
        let h = header(&[0x30, 0x80, 0x01, 9]).unwrap().unwrap();
        assert_eq!((h.header_len, h.remaining), (3, 128));
        assert_eq!(h.total(), 131);
        let max = header(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]).unwrap().unwrap();
        assert_eq!(max.remaining, 268_435_455);
        assert_eq!(
            header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(FrameError::BadLength)
        );
        assert_eq!(
            header(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(FrameError::BadLength)
        );
    }

    #[test]
    fn protocol_levels_are_found() {
        let v5 = [0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60];
        assert_eq!(protocol_level(&v5), Ok(5));
        let v31 = [
            0x10, 12, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 2, 0, 60,
        ];
        assert_eq!(protocol_level(&v31), Ok(3));
        assert_eq!(
            protocol_level(&[0x10, 3, 0, 4, b'M']),
            Err(FrameError::ShortConnect)
        );
    }
}
