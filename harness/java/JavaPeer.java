// The Java client (kafka-clients, the interop reference) as a peer of the
// interop tests. Run from source against the jars `harness broker install`
// resolves, no build step:
//
//   java -cp "$KAFKA_LIBS/*" harness/java/JavaPeer.java <command> [--flag value]...
//
// Every command prints JSON lines on stdout (Kafka's own logging is turned
// off or goes to stderr) and exits non-zero on failure.
//
//   produce       --count N --codec C --prefix P   records of `content` to partition 0
//   consume       --count N --isolation L          every partition from the start
//   txn-produce   --codec C --transactions T --per-txn N --abort-every K
//   group-member  --group G --assignor A --name M  until a line "stop" on stdin
//   copy          --output O --group G --count N --per-txn K
//                 the exactly-once loop: read_committed group member copying
//                 `--topic` to O in transactions with the group's offsets
//
// The content of `produce` (the Rust side rebuilds it, harness::java):
//   record i: key "key-i" (null when i % 5 == 3), value "P-value-i" (null when
//   i % 5 == 4), create time 1700000000000 + i,
//   headers [("dup", "1"), ("dup", "2"), ("null", null)].

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaPeer {
    static final long BASE_TIMESTAMP = 1_700_000_000_000L;

    public static void main(String[] argv) throws Exception {
        if (argv.length == 0) {
            fail("usage: JavaPeer <produce|consume|txn-produce|group-member> [--flag value]...");
        }
        Map<String, String> args = new HashMap<>();
        for (int i = 1; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) fail("expected a --flag, got " + argv[i]);
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        try {
            switch (argv[0]) {
                case "produce" -> produce(args);
                case "consume" -> consume(args);
                case "txn-produce" -> txnProduce(args);
                case "group-member" -> groupMember(args);
                case "copy" -> copy(args);
                default -> fail("unknown command " + argv[0]);
            }
        } catch (Exception e) {
            e.printStackTrace();
            fail(argv[0] + ": " + e);
        }
        System.out.flush();
        // Kafka's client threads must not keep the process alive.
        System.exit(0);
    }

    static String need(Map<String, String> args, String key) {
        String value = args.get(key);
        if (value == null) fail("missing --" + key);
        return value;
    }

    static Properties base(Map<String, String> args) {
        Properties props = new Properties();
        props.put("bootstrap.servers", need(args, "bootstrap"));
        props.put("client.id", "java-peer");
        return props;
    }

    static KafkaProducer<byte[], byte[]> producer(Properties props) {
        return new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(Properties props) {
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** Records of the documented content, one batch, acks=all. */
    static void produce(Map<String, String> args) throws Exception {
        int count = Integer.parseInt(need(args, "count"));
        String prefix = need(args, "prefix");
        String topic = need(args, "topic");
        Properties props = base(args);
        props.put("compression.type", args.getOrDefault("codec", "none"));
        props.put("acks", "all");
        props.put("linger.ms", "10000");
        props.put("batch.size", "1048576");
        try (KafkaProducer<byte[], byte[]> producer = producer(props)) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                byte[] key = i % 5 == 3 ? null : utf8("key-" + i);
                byte[] value = i % 5 == 4 ? null : utf8(prefix + "-value-" + i);
                RecordHeaders headers = new RecordHeaders();
                headers.add("dup", utf8("1"));
                headers.add("dup", utf8("2"));
                headers.add("null", null);
                sent.add(producer.send(new ProducerRecord<>(topic, 0, BASE_TIMESTAMP + i, key, value, headers)));
            }
            producer.flush();
            StringBuilder offsets = new StringBuilder();
            for (Future<RecordMetadata> f : sent) {
                if (offsets.length() > 0) offsets.append(',');
                offsets.append(f.get().offset());
            }
            System.out.println("{\"offsets\":[" + offsets + "]}");
        }
    }

    /**
     * Every partition of the topic from the start, without a group, until
     * --count records; then half a second more, so that a record beyond the
     * expected ones is printed too.
     */
    static void consume(Map<String, String> args) {
        int count = Integer.parseInt(need(args, "count"));
        String topic = need(args, "topic");
        Properties props = base(args);
        props.put("isolation.level", args.getOrDefault("isolation", "read_uncommitted"));
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofSeconds(20))) {
                partitions.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            int seen = 0;
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            long extraUntil = Long.MAX_VALUE;
            while (System.nanoTime() < Math.min(deadline, extraUntil)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(100))) {
                    System.out.println(describe(r));
                    seen++;
                }
                if (seen >= count && extraUntil == Long.MAX_VALUE) {
                    extraUntil = System.nanoTime() + Duration.ofMillis(500).toNanos();
                }
            }
            if (seen < count) fail("consume: " + seen + " of " + count + " records within 30 s");
        }
    }

    /** Transactions of --per-txn records on partition 0; every --abort-every-th aborted. */
    static void txnProduce(Map<String, String> args) {
        String topic = need(args, "topic");
        String codec = args.getOrDefault("codec", "none");
        int transactions = Integer.parseInt(need(args, "transactions"));
        int perTxn = Integer.parseInt(need(args, "per-txn"));
        int abortEvery = Integer.parseInt(need(args, "abort-every"));
        Properties props = base(args);
        props.put("compression.type", codec);
        props.put("transactional.id", "java-peer-" + UUID.randomUUID());
        props.put("linger.ms", "5");
        try (KafkaProducer<byte[], byte[]> producer = producer(props)) {
            producer.initTransactions();
            for (int t = 0; t < transactions; t++) {
                producer.beginTransaction();
                for (int i = 0; i < perTxn; i++) {
                    String value = codec + "-t" + t + "-" + i;
                    producer.send(new ProducerRecord<>(topic, 0, utf8("k" + i), utf8(value)));
                }
                if (abortEvery > 0 && (t + 1) % abortEvery == 0) {
                    // Without the flush the abort would drop unsent records
                    // instead of writing them and marking them aborted.
                    producer.flush();
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
            }
        }
        System.out.println("{\"transactions\":" + transactions + "}");
    }

    /**
     * The exactly-once loop as the Java client's documentation writes it
     * (KIP-447): poll, copy each record (value prefixed "T:") in a
     * transaction that also carries the group's offsets, commit; until
     * `--count` records are committed. A transaction takes the records of
     * polls until it has `--per-txn` or a poll comes back empty.
     */
    static void copy(Map<String, String> args) {
        String input = need(args, "topic");
        String output = need(args, "output");
        String group = need(args, "group");
        long count = Long.parseLong(need(args, "count"));
        int perTxn = Integer.parseInt(need(args, "per-txn"));
        Properties consumerProps = base(args);
        consumerProps.put("group.id", group);
        consumerProps.put("isolation.level", "read_committed");
        consumerProps.put("enable.auto.commit", "false");
        consumerProps.put("auto.offset.reset", "earliest");
        Properties producerProps = base(args);
        producerProps.put("transactional.id", group + "-txn");
        producerProps.put("linger.ms", "5");
        long copied = 0;
        long started = System.nanoTime();
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(consumerProps);
             KafkaProducer<byte[], byte[]> producer = producer(producerProps)) {
            producer.initTransactions();
            consumer.subscribe(List.of(input));
            while (copied < count) {
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                int inTxn = 0;
                producer.beginTransaction();
                while (inTxn < perTxn) {
                    ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                    if (records.isEmpty()) break;
                    for (ConsumerRecord<byte[], byte[]> record : records) {
                        byte[] value = new byte[record.value().length + 2];
                        value[0] = 'T';
                        value[1] = ':';
                        System.arraycopy(record.value(), 0, value, 2, record.value().length);
                        producer.send(new ProducerRecord<>(output, record.key(), value));
                        offsets.put(new TopicPartition(record.topic(), record.partition()),
                            new OffsetAndMetadata(record.offset() + 1));
                        inTxn++;
                    }
                }
                producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
                producer.commitTransaction();
                copied += inTxn;
            }
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        System.out.println("{\"records\":" + copied + ",\"records_per_sec\":" + (copied / seconds) + "}");
    }

    /**
     * A group member that commits after processing: records are printed,
     * then their offsets committed synchronously; partitions revoked in a
     * rebalance are committed first (the listener runs inside poll, after the
     * previous poll's records were printed). Runs until "stop" on stdin.
     */
    static void groupMember(Map<String, String> args) throws Exception {
        String topic = need(args, "topic");
        String name = need(args, "name");
        String assignor = need(args, "assignor");
        Properties props = base(args);
        props.put("group.id", need(args, "group"));
        props.put("client.id", name);
        props.put("enable.auto.commit", "false");
        props.put("auto.offset.reset", "earliest");
        props.put("session.timeout.ms", "10000");
        props.put("heartbeat.interval.ms", "500");
        props.put("max.poll.records", "50");
        props.put("partition.assignment.strategy", switch (assignor) {
            case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
            case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
            default -> throw new IllegalArgumentException("--assignor range|cooperative-sticky, got " + assignor);
        });
        KafkaConsumer<byte[], byte[]> consumer = consumer(props);
        AtomicBoolean stop = new AtomicBoolean(false);
        Thread stdin = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null && !line.trim().equals("stop")) { }
            } catch (Exception ignored) { }
            stop.set(true);
            consumer.wakeup();
        });
        stdin.setDaemon(true);
        stdin.start();
        consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (TopicPartition tp : partitions) {
                    offsets.put(tp, new OffsetAndMetadata(consumer.position(tp)));
                }
                consumer.commitSync(offsets);
                event("revoked", partitions);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                event("assigned", partitions);
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> partitions) {
                event("lost", partitions);
            }
        });
        try {
            while (!stop.get()) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    System.out.println("{\"event\":\"record\",\"partition\":" + r.partition()
                        + ",\"offset\":" + r.offset() + ",\"value\":" + quote(r.value()) + "}");
                }
                System.out.flush();
                if (!records.isEmpty()) {
                    try {
                        consumer.commitSync();
                    } catch (RebalanceInProgressException e) {
                        // Cooperative rebalancing goes on while this member
                        // consumes; the offsets are committed by the next
                        // commit, or by onPartitionsRevoked for partitions
                        // that move.
                    }
                }
            }
        } catch (WakeupException e) {
            // stdin said stop.
        }
        consumer.close();
        System.out.println("{\"event\":\"closed\"}");
    }

    static void event(String kind, Collection<TopicPartition> partitions) {
        StringBuilder list = new StringBuilder();
        for (TopicPartition tp : partitions) {
            if (list.length() > 0) list.append(',');
            list.append(tp.partition());
        }
        System.out.println("{\"event\":\"" + kind + "\",\"partitions\":[" + list + "]}");
        System.out.flush();
    }

    /** One record with every field: bytes as hex, null as null. */
    static String describe(ConsumerRecord<byte[], byte[]> r) {
        StringBuilder headers = new StringBuilder();
        for (Header h : r.headers()) {
            if (headers.length() > 0) headers.append(',');
            headers.append('[').append(quote(utf8(h.key()))).append(',').append(hex(h.value())).append(']');
        }
        return "{\"partition\":" + r.partition() + ",\"offset\":" + r.offset()
            + ",\"timestamp\":" + r.timestamp() + ",\"timestamp_type\":\"" + r.timestampType().name
            + "\",\"key\":" + hex(r.key()) + ",\"value\":" + hex(r.value())
            + ",\"headers\":[" + headers + "]}";
    }

    static String hex(byte[] bytes) {
        if (bytes == null) return "null";
        StringBuilder out = new StringBuilder("\"");
        for (byte b : bytes) out.append(String.format("%02x", b));
        return out.append('"').toString();
    }

    /** A JSON string of UTF-8 bytes the tests wrote (letters, digits, '-', ':'). */
    static String quote(byte[] bytes) {
        if (bytes == null) return "null";
        String s = new String(bytes, StandardCharsets.UTF_8);
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static void fail(String message) {
        System.err.println(message);
        System.exit(1);
    }
}
