//! Sparkplug B topic names: `spBv1.0/{group}/{KIND}/{edge node}[/{device}]`, and the
//! host application's `spBv1.0/STATE/{host id}`.

use std::fmt;
use std::str::FromStr;

/// The namespace element every Sparkplug B topic starts with.
pub const NAMESPACE: &str = "spBv1.0";

/// The message type element of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// Edge node birth certificate.
    NBirth,
    /// Edge node data.
    NData,
    /// Edge node death certificate (usually the MQTT Last Will).
    NDeath,
    /// Command to an edge node.
    NCmd,
    /// Device birth certificate.
    DBirth,
    /// Device data.
    DData,
    /// Device death certificate.
    DDeath,
    /// Command to a device.
    DCmd,
    /// Host application state (`spBv1.0/STATE/{host id}`).
    State,
}

impl MessageKind {
    /// Every kind, in the order above.
    pub const ALL: [MessageKind; 9] = [
        MessageKind::NBirth,
        MessageKind::NData,
        MessageKind::NDeath,
        MessageKind::NCmd,
        MessageKind::DBirth,
        MessageKind::DData,
        MessageKind::DDeath,
        MessageKind::DCmd,
        MessageKind::State,
    ];

    /// The topic element, e.g. `NBIRTH`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::NBirth => "NBIRTH",
            MessageKind::NData => "NDATA",
            MessageKind::NDeath => "NDEATH",
            MessageKind::NCmd => "NCMD",
            MessageKind::DBirth => "DBIRTH",
            MessageKind::DData => "DDATA",
            MessageKind::DDeath => "DDEATH",
            MessageKind::DCmd => "DCMD",
            MessageKind::State => "STATE",
        }
    }

    /// Whether topics of this kind name a device (`D*`).
    pub fn is_device(self) -> bool {
        matches!(self, MessageKind::DBirth | MessageKind::DData | MessageKind::DDeath | MessageKind::DCmd)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// A parsed Sparkplug B topic. For `STATE` topics `group` is empty and `edge_node` holds
/// the host application id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic {
    pub group: String,
    pub kind: MessageKind,
    pub edge_node: String,
    /// Present exactly for the `D*` kinds.
    pub device: Option<String>,
}

/// Why a topic is not a Sparkplug B topic; each variant names the offending topic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic `{topic}` does not start with `{NAMESPACE}/`")]
    Namespace { topic: String },
    #[error(
        "topic `{topic}` has an unknown message type `{kind}` (known: NBIRTH, NDATA, NDEATH, NCMD, DBIRTH, DDATA, DDEATH, DCMD, STATE)"
    )]
    Kind { topic: String, kind: String },
    #[error("topic `{topic}` has {found} elements; a {kind} topic has {expected}")]
    Elements { topic: String, kind: MessageKind, found: usize, expected: usize },
    #[error("topic `{topic}`: the {element} is empty or contains `+`, `#` or `/`")]
    Id { topic: String, element: &'static str },
}

/// Whether `id` is a valid group, edge node, device or host id: non-empty, without MQTT
/// wildcards or level separators.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && !id.contains(['+', '#', '/'])
}

impl Topic {
    /// An edge node topic (`N*` kinds).
    pub fn node(group: &str, kind: MessageKind, edge_node: &str) -> Topic {
        Topic { group: group.to_owned(), kind, edge_node: edge_node.to_owned(), device: None }
    }

    /// A device topic (`D*` kinds).
    pub fn device(group: &str, kind: MessageKind, edge_node: &str, device: &str) -> Topic {
        Topic {
            group: group.to_owned(),
            kind,
            edge_node: edge_node.to_owned(),
            device: Some(device.to_owned()),
        }
    }

    /// Parses a topic name, checking the namespace, the kind, the number of elements for
    /// that kind and each id.
    pub fn parse(topic: &str) -> Result<Topic, TopicError> {
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.first() != Some(&NAMESPACE) || parts.len() < 2 {
            return Err(TopicError::Namespace { topic: topic.to_owned() });
        }
        let id = |value: &str, element: &'static str| {
            if valid_id(value) {
                Ok(value.to_owned())
            } else {
                Err(TopicError::Id { topic: topic.to_owned(), element })
            }
        };
        if parts[1] == "STATE" {
            if parts.len() != 3 {
                return Err(TopicError::Elements {
                    topic: topic.to_owned(),
                    kind: MessageKind::State,
                    found: parts.len(),
                    expected: 3,
                });
            }
            return Ok(Topic {
                group: String::new(),
                kind: MessageKind::State,
                edge_node: id(parts[2], "host id")?,
                device: None,
            });
        }
        let kind_text = parts.get(2).copied().unwrap_or("");
        let kind = kind_text
            .parse::<MessageKind>()
            .ok()
            .filter(|k| *k != MessageKind::State)
            .ok_or_else(|| TopicError::Kind { topic: topic.to_owned(), kind: kind_text.to_owned() })?;
        let expected = if kind.is_device() { 5 } else { 4 };
        if parts.len() != expected {
            return Err(TopicError::Elements { topic: topic.to_owned(), kind, found: parts.len(), expected });
        }
        Ok(Topic {
            group: id(parts[1], "group id")?,
            kind,
            edge_node: id(parts[3], "edge node id")?,
            device: if kind.is_device() { Some(id(parts[4], "device id")?) } else { None },
        })
    }
}

impl FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, TopicError> {
        Topic::parse(s)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == MessageKind::State {
            return write!(f, "{NAMESPACE}/STATE/{}", self.edge_node);
        }
        write!(f, "{NAMESPACE}/{}/{}/{}", self.group, self.kind, self.edge_node)?;
        if let Some(device) = &self.device {
            write!(f, "/{device}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        for text in [
            "spBv1.0/twin/NBIRTH/press-shop",
            "spBv1.0/twin/NDEATH/press-shop",
            "spBv1.0/twin/NCMD/press-shop",
            "spBv1.0/g/DDATA/press-shop/press-1",
            "spBv1.0/g/DCMD/e/d",
            "spBv1.0/STATE/scada-1",
        ] {
            let topic = Topic::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(topic.to_string(), text);
        }
        let t = Topic::parse("spBv1.0/g/DBIRTH/node/dev").expect("parses");
        assert_eq!(t, Topic::device("g", MessageKind::DBirth, "node", "dev"));
    }

    #[test]
    fn bad_topics_are_named() {
        let err = |t: &str| Topic::parse(t).expect_err(t).to_string();
        assert!(err("spAv1.0/g/NBIRTH/n").contains("does not start with `spBv1.0/`"));
        assert!(err("spBv1.0/g/NBORN/n").contains("unknown message type `NBORN`"));
        assert!(err("spBv1.0/g/DDATA/n").contains("has 4 elements; a DDATA topic has 5"));
        assert!(err("spBv1.0/g/NDATA/n/d").contains("has 5 elements; a NDATA topic has 4"));
        assert!(err("spBv1.0/g/NDATA/").contains("edge node id"));
        assert!(err("spBv1.0/+/NDATA/n").contains("group id"));
        assert!(err("spBv1.0/g/STATE/n").contains("unknown message type `STATE`"));
        assert!(err("spBv1.0").contains("does not start"));
    }
}
