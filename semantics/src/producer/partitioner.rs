//! Choosing a partition for a record, compatible with the Java producer.
//!
//! Keyed records go to `toPositive(murmur2(key)) % numPartitions`, exactly as
//! Java's `BuiltInPartitioner.partitionForKey` (and the older
//! `DefaultPartitioner`) place them, so this client can produce to the same
//! topics as Java services (Kafka Streams, Connect, ksqlDB) and keep every key
//! on the partition they expect. librdkafka (and the clients built on it) uses
//! a CRC32-based `consistent_random` partitioner by default, which places keys
//! differently; our default deliberately follows Java instead.
//!
//! Records without a key use sticky partitioning (KIP-480): every record for a
//! topic goes to one partition until that partition's batch is closed, then a
//! new partition is picked at random. This fills batches faster than spreading
//! records round-robin. It is Java's `BuiltInPartitioner` simplified: no
//! adaptive weighting by broker queue sizes.
//!
//! A [`Partitioner`] supplied by the user is asked first and may decline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Java's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, over
/// little-endian 4-byte words, returned as Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java computes `seed ^ data.length` on int; arrays stay below 2^31 bytes.
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R; // Java `>>>`: logical shift, hence u32.
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    // Java's `switch (length % 4)` falls through from case 3 to 2 to 1: every
    // remaining byte i is xored in at bit 8*i, then one multiplication.
    let tail = words.remainder();
    for (i, &byte) in tail.iter().enumerate() {
        h ^= u32::from(byte) << (8 * i);
    }
    if !tail.is_empty() {
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, so
/// `i32::MIN` maps to 0 and negative values keep their low 31 bits).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Java's producer picks for `key`:
/// `toPositive(murmur2(key)) % numPartitions`.
///
/// `num_partitions` should be at least 1; where Java would throw for 0, this
/// returns partition 0 rather than panicking.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> i32 {
    to_positive(murmur2(key))
        .checked_rem(num_partitions)
        .unwrap_or(0)
}

/// A user-supplied partitioning rule, asked before the default one.
pub trait Partitioner: Send + Sync {
    /// The partition for a record of `topic` with `key` (`None`: no key),
    /// in `0..num_partitions`; `None` means "no opinion": the producer then
    /// uses murmur2 for keyed records and the sticky partition otherwise.
    fn partition(&self, topic: &str, key: Option<&[u8]>, num_partitions: i32) -> Option<i32>;
}

/// Java's default placement for keyed records ([`partition_for_key`]);
/// declines records without a key, leaving them to sticky partitioning.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, num_partitions: i32) -> Option<i32> {
        key.map(|key| partition_for_key(key, num_partitions))
    }
}

/// Where a topic's records without a key go.
#[derive(Debug, Clone, Copy)]
enum Sticky {
    On(i32),        // keep using this partition
    LeaveFrom(i32), // its batch was closed: pick another one
}

/// Sticky partitioning for records without a key (KIP-480): one current
/// partition per topic, changed only when its batch is closed.
#[derive(Debug)]
pub struct StickyPartitioner {
    topics: HashMap<String, Sticky>,
    rng: XorShift64,
}

impl Default for StickyPartitioner {
    fn default() -> Self {
        Self::with_seed(clock_seed())
    }
}

impl StickyPartitioner {
    fn with_seed(seed: u64) -> Self {
        // Spread the seed's bits; the state must never be zero.
        Self {
            topics: HashMap::new(),
            rng: XorShift64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
        }
    }

    /// The current partition for `topic`'s records without a key, choosing
    /// one at random among `num_partitions` when there is none (or it is
    /// gone because the partition count shrank).
    pub fn partition(&mut self, topic: &str, num_partitions: i32) -> i32 {
        let avoid = match self.topics.get(topic) {
            Some(&Sticky::On(p)) if p < num_partitions => return p,
            Some(&Sticky::LeaveFrom(p)) => Some(p),
            _ => None,
        };
        let chosen = self.rng.pick(num_partitions, avoid);
        self.topics.insert(topic.to_owned(), Sticky::On(chosen));
        chosen
    }

    /// The batch for `previous_partition` of `topic` was closed (full or
    /// sent): the next record moves to another partition. Ignored when
    /// `topic` has already moved away from `previous_partition`.
    pub fn on_new_batch(&mut self, topic: &str, previous_partition: i32) {
        if let Some(sticky) = self.topics.get_mut(topic) {
            if matches!(*sticky, Sticky::On(p) if p == previous_partition) {
                *sticky = Sticky::LeaveFrom(previous_partition);
            }
        }
    }
}

/// A seed differing per call and per run: the clock mixed with a counter.
fn clock_seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// xorshift64* (Vigna): small and fast; not for cryptography.
#[derive(Debug)]
struct XorShift64(u64);

impl XorShift64 {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A uniform partition in `0..n`, other than `avoid` when `n >= 2`.
    fn pick(&mut self, n: i32, avoid: Option<i32>) -> i32 {
        let mut below = |n: i32| (self.next() % n.max(1) as u64) as i32;
        match avoid.filter(|p| n >= 2 && (0..n).contains(p)) {
            Some(avoid) => {
                let p = below(n - 1); // then skip over `avoid`
                p + i32::from(p >= avoid)
            }
            None => below(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// key → Java murmur2. Sources (values copied, not computed here):
    /// - apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, `testMurmur2`
    /// - confluentinc/librdkafka src/rdmurmur2.c, `unittest_murmur2` (`java_murmur2_results`)
    const MURMUR2: &[(&[u8], i32)] = &[
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
        (b"abc", 479470107),
        (b"kafka", 0xd067cf64_u32 as i32),
        (b"giberish123456789", 0x8f552b0c_u32 as i32),
        (b"1234", 0x9fc97b14_u32 as i32),
        (b"234", 0xe7c009ca_u32 as i32),
        (b"34", 0x873930da_u32 as i32),
        (b"4", 0x5a4b5ca1_u32 as i32),
        (
            b"PreAmbleWillBeRemoved,ThePrePartThatIs",
            0x78424f1c_u32 as i32,
        ),
        (
            b"reAmbleWillBeRemoved,ThePrePartThatIs",
            0x4a62b377_u32 as i32,
        ),
        (
            b"eAmbleWillBeRemoved,ThePrePartThatIs",
            0xe0e4e09e_u32 as i32,
        ),
        (
            b"AmbleWillBeRemoved,ThePrePartThatIs",
            0x62b8b43f_u32 as i32,
        ),
        (b"", 0x106e08d9_u32 as i32),
    ];

    /// key → partition for 3, 6 and 100 partitions. These follow from the cited
    /// hashes above by Java's formula `(h & 0x7fffffff) % n` (worked out apart
    /// from this code), not from our murmur2.
    const PARTITIONS: &[(&[u8], i32, i32, i32)] = &[
        (b"21", 0, 0, 40),
        (b"foobar", 0, 0, 66),
        (b"a-little-bit-long-string", 2, 2, 12),
        (b"a-little-bit-longer-string", 2, 5, 19),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            2,
            5,
            77,
        ),
        (b"abc", 0, 3, 7),
        (b"kafka", 1, 4, 80),
        (b"giberish123456789", 2, 2, 20),
        (b"1234", 0, 0, 40),
        (b"", 0, 3, 81),
    ];

    #[test]
    fn murmur2_matches_java_for_every_tail_length_and_the_empty_key() {
        for &(key, want) in MURMUR2 {
            assert_eq!(murmur2(key), want, "key {:?}", String::from_utf8_lossy(key));
        }
        let tails: HashSet<usize> = MURMUR2.iter().map(|(key, _)| key.len() % 4).collect();
        assert_eq!(tails, HashSet::from([0, 1, 2, 3]));
        assert_eq!((murmur2(b""), partition_for_key(b"", 6)), (275646681, 3));
    }

    #[test]
    fn partition_for_key_and_default_partitioner_match_java() {
        for &(key, p3, p6, p100) in PARTITIONS {
            let got = [3, 6, 100].map(|n| partition_for_key(key, n));
            assert_eq!(
                got,
                [p3, p6, p100],
                "key {:?}",
                String::from_utf8_lossy(key)
            );
            assert_eq!(
                DefaultPartitioner.partition("t", Some(key), 100),
                Some(p100)
            );
        }
        assert_eq!(DefaultPartitioner.partition("t", None, 6), None);
    }

    #[test]
    fn negative_hashes_give_positive_partitions() {
        assert_eq!((to_positive(-1), to_positive(i32::MIN)), (i32::MAX, 0));
        assert!(murmur2(b"21") < 0);
        assert!((1..=200).all(|n| (0..n).contains(&partition_for_key(b"21", n))));
        assert_eq!(partition_for_key(b"21", 0), 0);
    }

    #[test]
    fn sticky_stays_until_new_batch_then_moves() {
        let mut sticky = StickyPartitioner::with_seed(7);
        let first = sticky.partition("t", 6);
        assert!((0..6).contains(&first));
        assert!((0..100).all(|_| sticky.partition("t", 6) == first));
        sticky.on_new_batch("t", (first + 1) % 6); // a stale batch: ignored
        sticky.on_new_batch("other", first); // another topic: ignored
        assert_eq!(sticky.partition("t", 6), first);
        sticky.on_new_batch("t", first);
        let second = sticky.partition("t", 6);
        assert_ne!(second, first);
        assert!((0..100).all(|_| sticky.partition("t", 6) == second));
        sticky.on_new_batch("one", 0);
        assert_eq!(
            (sticky.partition("one", 1), sticky.partition("one", 1)),
            (0, 0)
        );
    }

    #[test]
    fn sticky_covers_all_partitions_over_many_batches() {
        let mut sticky = StickyPartitioner::default();
        let mut seen = HashSet::new();
        let mut previous = sticky.partition("t", 6);
        for _ in 0..500 {
            sticky.on_new_batch("t", previous);
            let next = sticky.partition("t", 6);
            assert_ne!(next, previous);
            seen.insert(next);
            previous = next;
        }
        assert_eq!(seen, (0..6).collect());
    }
}
