//! Event arguments of any arity, binary included, carried through unchanged.
//!
//! socketioxide's common parser spreads a value over the event's arguments
//! only when serde sees a *tuple*; a `Vec` would become one array argument.
//! The relay handlers must forward exactly what a client sent (any number of
//! arguments, attachments where they were), so [`EventArgs`] presents itself
//! to serde as a tuple of unknown length and keeps each argument as an
//! [`rmpv::Value`], whose `Binary` variant round-trips attachments.

use std::fmt;

use rmpv::Value;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};

/// The arguments of one event, in order, without the event name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventArgs(pub Vec<Value>);

impl EventArgs {
    /// The first argument, if any.
    pub fn first(&self) -> Option<&Value> {
        self.0.first()
    }
}

impl Serialize for EventArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for EventArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = EventArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventArgs, A::Error> {
                // The size hint comes from the peer: cap what we reserve up front.
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
                while let Some(arg) = seq.next_element::<Value>()? {
                    args.push(arg);
                }
                Ok(EventArgs(args))
            }
        }
        // `usize::MAX` marks "any length"; socketioxide only checks that a
        // tuple was asked for, and the visitor reads until the sequence ends.
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketioxide_core::parser::{is_de_tuple, is_ser_tuple};

    #[test]
    fn socketioxide_spreads_it_as_arguments() {
        // These are the probes socketioxide's parsers use to decide whether a
        // value is spread over the event's arguments or sent as one argument.
        assert!(is_ser_tuple(&EventArgs(vec![
            Value::from(1),
            Value::from("a")
        ])));
        assert!(is_de_tuple::<EventArgs>());
    }
}
