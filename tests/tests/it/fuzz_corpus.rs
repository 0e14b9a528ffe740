//! The fuzz targets on stable, in every test run: each kept corpus input
//! (`tests/fuzz/corpus/<target>/`), a few seeds made here (real peer
//! frames), and a few thousand deterministic mutations of them. A panic in
//! a parser fails the test and prints the input to add to the corpus.
//! `RSP_FUZZ_ITERATIONS` raises the mutation count for a longer run; the
//! coverage-guided runs are `cargo +nightly fuzz run` in `tests/fuzz/`
//! (docs/security.md).

use std::path::Path;

use rsp_consensus::peer_auth::{JoinToken, PeerAuth};
use rsp_consensus::rpc::{PEER_PROTOCOL, PeerBody, PeerRequest, encode_request};
use rsp_tests::fuzz::TARGETS;

/// Mutations per target in the default (CI) run.
const DEFAULT_ITERATIONS: u64 = 2_000;

/// xorshift64*: a fixed seed, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that parsers tend to treat specially.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"%",
    b"%00",
    b"%ff",
    b"&",
    b"=",
    b"+",
    b".",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\n",
    b"\xff\xff\xff\xff",
    b"\x80",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"null",
    b"{\"__entity\":",
    b"\xf0\x9f\x98\x80",
    b"eyJ",
    b"\r\n",
    b"../",
    b"@",
];

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            4 => {
                let bytes = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, bytes.iter().copied());
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..end]);
            }
            _ => out.truncate(at),
        }
    }
    out
}

fn peer_seeds() -> Vec<Vec<u8>> {
    let auth =
        PeerAuth::new(&JoinToken::parse("fuzz-target-join-token-0123456789").expect("token"));
    let bodies = [
        PeerBody::GetSecret { name: "kek".into() },
        PeerBody::ReadIndex,
        PeerBody::WaitApplied {
            index: 7,
            timeout_ms: 100,
        },
        PeerBody::RemoveNode { id: 3 },
        PeerBody::ElectNow,
    ];
    bodies
        .into_iter()
        .map(|body| {
            let req = PeerRequest {
                protocol: PEER_PROTOCOL,
                group: 0,
                body,
            };
            let frame = encode_request(&req).expect("encodes");
            let mut seed = auth.sign_request(&frame).into_bytes();
            seed.extend_from_slice(&frame);
            seed
        })
        .collect()
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if name == "peer_frame" {
        inputs.extend(peer_seeds());
    }
    inputs
}

fn show(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    format!("{text:?} ({} bytes)", input.len())
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations_of_it() {
    let iterations = std::env::var("RSP_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    for (name, target) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "no corpus for fuzz target {name}");
        let mut rng = Rng(0x5eed_0000 ^ (name.len() as u64 * 0x9e37_79b9));
        let run = |input: &[u8]| {
            let caught = std::panic::catch_unwind(|| target(input));
            assert!(
                caught.is_ok(),
                "fuzz target {name} panicked on {}",
                show(input)
            );
        };
        for seed in &seeds {
            run(seed);
        }
        for _ in 0..iterations {
            let seed = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, seed, other);
            run(&input);
        }
    }
}
