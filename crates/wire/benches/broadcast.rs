//! Criterion benchmarks of the broadcast hot path: one encode per broadcast
//! on the sender, one decode per broadcast on every other node.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rmpv::Value;
use wire::{BroadcastFlags, BroadcastMessage, BroadcastOpts, BroadcastPacket, PacketKind};

fn message(data: Value) -> BroadcastMessage {
    BroadcastMessage {
        uid: "Ab12Cd".into(),
        packet: BroadcastPacket {
            kind: PacketKind::Event,
            nsp: "/".into(),
            data,
        },
        opts: BroadcastOpts {
            rooms: vec!["room1".into()],
            except: vec!["vZ3mFz1xQ2a8sKd0AAAB".into()],
            flags: BroadcastFlags::default(),
        },
    }
}

fn cases() -> Vec<(&'static str, BroadcastMessage)> {
    let small = Value::Array(vec![Value::from("hello"), Value::from("world")]);
    let object = Value::Map(
        (0..16)
            .map(|i| {
                (
                    Value::from(format!("field{i}")),
                    Value::from("x".repeat(48)),
                )
            })
            .collect(),
    );
    let kilobyte = Value::Array(vec![Value::from("update"), object]);
    let binary = Value::Array(vec![Value::from("blob"), Value::Binary(vec![7; 1024])]);
    vec![
        ("small_event", message(small)),
        ("json_1kb", message(kilobyte)),
        ("binary_1kb", message(binary)),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    for (name, msg) in cases() {
        let encoded = msg.encode();
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| black_box(&msg).encode())
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| BroadcastMessage::decode(black_box(&encoded)))
        });
        group.bench_function(format!("peek_uid/{name}"), |b| {
            b.iter(|| wire::peek_uid(black_box(&encoded)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
