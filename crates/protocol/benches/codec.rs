//! Throughput of the hot paths: Socket.IO packet encode/decode, Engine.IO
//! payloads, and msgpack -> Socket.IO conversion (run for every broadcast a
//! gateway receives from Redis).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use protocol::convert::{msgpack_ref_to_socketio, msgpack_to_socketio, socketio_to_msgpack};
use protocol::engineio::{decode_payload_v4, encode_payload_v4, EioPacket};
use protocol::socketio::{Packet, PacketDecoder};
use rmpv::Value;

/// `["chat", "hello world"]`
fn small() -> Value {
    Value::Array(vec![Value::from("chat"), Value::from("hello world")])
}

/// About 1 KB of typical JSON-ish data: an event with a list of records.
fn one_kb() -> Value {
    let record = |i: i64| {
        Value::Map(vec![
            (Value::from("id"), Value::from(i)),
            (Value::from("user"), Value::from(format!("user-{i}"))),
            (Value::from("score"), Value::F64(i as f64 * 1.25)),
            (Value::from("online"), Value::Boolean(i % 2 == 0)),
            (
                Value::from("tags"),
                Value::Array(vec![Value::from("a"), Value::from("b\"c")]),
            ),
        ])
    };
    Value::Array(vec![
        Value::from("update"),
        Value::Array((0..12).map(record).collect()),
    ])
}

/// An event with a 1 KB binary and a small object.
fn binary() -> Value {
    Value::Array(vec![
        Value::from("file"),
        Value::Map(vec![(Value::from("name"), Value::from("a.bin"))]),
        Value::Binary(vec![7; 1024]),
    ])
}

fn cases() -> Vec<(&'static str, Value)> {
    vec![("small", small()), ("1kb", one_kb()), ("binary", binary())]
}

fn msgpack_conversion(c: &mut Criterion) {
    let mut group = c.benchmark_group("msgpack_to_socketio");
    for (name, value) in cases() {
        let mut raw = Vec::new();
        rmpv::encode::write_value(&mut raw, &value).expect("encode");
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_with_input(BenchmarkId::new("value", name), &value, |b, value| {
            b.iter(|| msgpack_to_socketio(black_box(value)).expect("convert"))
        });
        // decode from the Redis bytes + convert, zero-copy attachments
        let source = Bytes::from(raw);
        group.bench_with_input(BenchmarkId::new("bytes_ref", name), &source, |b, source| {
            b.iter(|| {
                let value = rmpv::decode::read_value_ref(&mut &source[..]).expect("decode");
                msgpack_ref_to_socketio(&value, Some(source)).expect("convert")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("socketio_to_msgpack");
    for (name, value) in cases() {
        let (json, attachments) = msgpack_to_socketio(&value).expect("convert");
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(name),
            &(json, attachments),
            |b, (json, attachments)| {
                b.iter(|| socketio_to_msgpack(black_box(json), attachments).expect("convert"))
            },
        );
    }
    group.finish();
}

fn packets(c: &mut Criterion) {
    let mut group = c.benchmark_group("socketio_packet");
    for (name, value) in cases() {
        let (json, attachments) = msgpack_to_socketio(&value).expect("convert");
        let packet = if attachments.is_empty() {
            Packet::event("/chat", json).with_id(42)
        } else {
            Packet::binary_event("/chat", json, attachments.len()).with_id(42)
        };
        let text = packet.encode();
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &packet, |b, packet| {
            b.iter(|| black_box(packet).encode())
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &text, |b, text| {
            b.iter(|| Packet::decode(black_box(text)).expect("decode"))
        });
        group.bench_with_input(
            BenchmarkId::new("decoder", name),
            &(text, attachments),
            |b, (text, attachments)| {
                b.iter(|| {
                    let mut decoder = PacketDecoder::new();
                    let mut done = decoder.push_text(text).expect("text");
                    for attachment in attachments {
                        done = decoder.push_binary(attachment.clone()).expect("binary");
                    }
                    done.expect("complete")
                })
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("engineio_payload_v4");
    let batch: Vec<EioPacket> = (0..10)
        .map(|i| match i % 3 {
            0 => EioPacket::Binary(Bytes::from(vec![1; 256])),
            _ => EioPacket::Message(format!("2[\"chat\",\"message number {i}\"]")),
        })
        .collect();
    let payload = encode_payload_v4(&batch);
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| encode_payload_v4(black_box(&batch)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_payload_v4(black_box(&payload)).expect("decode"))
    });
    group.finish();
}

criterion_group!(benches, msgpack_conversion, packets);
criterion_main!(benches);
