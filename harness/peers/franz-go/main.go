// franz-bench: franz-go as a peer of `harness bench --peers`. Produces or
// consumes the harness's workload and prints one JSON line; the harness
// measures this process's CPU and peak RSS itself (wait4).
//
//	franz-bench -mode produce -bootstrap B -topic T -count N -size S -batch BYTES
//	franz-bench -mode consume -bootstrap B -topic T -count N
//	franz-bench -mode copy -bootstrap B -topic IN -output OUT -group G -count N -batch RECORDS
//
// Record i of the produce workload has key "i" and value "msg-i" padded with
// '.' to the size, as `harness produce` writes it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type report struct {
	Client        string  `json:"client"`
	Records       int     `json:"records"`
	Failed        int     `json:"failed"`
	ElapsedMs     float64 `json:"elapsed_ms"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MbPerSec      float64 `json:"mb_per_sec"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
}

func main() {
	mode := flag.String("mode", "produce", "produce or consume")
	bootstrap := flag.String("bootstrap", "", "bootstrap servers")
	topic := flag.String("topic", "", "topic")
	count := flag.Int("count", 1_000_000, "records")
	size := flag.Int("size", 100, "value size in bytes (produce)")
	batch := flag.Int("batch", 1_000_000, "batch size in bytes (produce); records per transaction (copy)")
	output := flag.String("output", "", "output topic (copy)")
	group := flag.String("group", "", "consumer group (copy)")
	flag.Parse()
	if *bootstrap == "" || *topic == "" {
		fail("-bootstrap and -topic are required")
	}
	seeds := strings.Split(*bootstrap, ",")
	var out report
	switch *mode {
	case "produce":
		out = produce(seeds, *topic, *count, *size, *batch)
	case "consume":
		out = consume(seeds, *topic, *count)
	case "copy":
		out = copyExactlyOnce(seeds, *topic, *output, *group, *count, *batch)
	default:
		fail("-mode produce|consume, got " + *mode)
	}
	out.Client = "franz-go v1.22.3"
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}

func produce(seeds []string, topic string, count, size, batch int) report {
	// Idempotent with acks=all are franz-go's defaults; linger as the others.
	// Its default compression is snappy: off, as for every other client (the
	// padded values compress some fiftyfold).
	client, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(batch)),
		kgo.MaxBufferedRecords(1_000_000),
	)
	if err != nil {
		fail(err.Error())
	}
	defer client.Close()
	latencies := make([]time.Duration, 0, count)
	var mu sync.Mutex
	failed := 0
	ctx := context.Background()
	started := time.Now()
	for i := 0; i < count; i++ {
		value := []byte("msg-" + strconv.Itoa(i))
		if len(value) < size {
			value = append(value, []byte(strings.Repeat(".", size-len(value)))...)
		}
		sent := time.Now()
		client.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value}, func(_ *kgo.Record, err error) {
			mu.Lock()
			latencies = append(latencies, time.Since(sent))
			if err != nil {
				failed++
			}
			mu.Unlock()
		})
	}
	if err := client.Flush(ctx); err != nil {
		fail(err.Error())
	}
	elapsed := time.Since(started)
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pick := func(p float64) float64 {
		index := int(float64(len(latencies)) * p)
		if index >= len(latencies) {
			index = len(latencies) - 1
		}
		return float64(latencies[index].Microseconds()) / 1000
	}
	seconds := elapsed.Seconds()
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "%d records failed\n", failed)
	}
	return report{
		Records:       count - failed,
		Failed:        failed,
		ElapsedMs:     seconds * 1000,
		RecordsPerSec: float64(count-failed) / seconds,
		MbPerSec:      float64((count-failed)*size) / seconds / 1e6,
		P50Ms:         pick(0.5),
		P99Ms:         pick(0.99),
	}
}

func consume(seeds []string, topic string, count int) report {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		fail(err.Error())
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	started := time.Now()
	consumed, bytes := 0, 0
	var last time.Time
	for consumed < count {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			fail(fmt.Sprintf("consumed %d of %d within 120 s", consumed, count))
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail(fmt.Sprintf("%s[%d]: %v", t, p, err))
		})
		fetches.EachRecord(func(r *kgo.Record) {
			consumed++
			bytes += len(r.Value)
		})
		last = time.Now()
	}
	seconds := last.Sub(started).Seconds()
	return report{
		Records:       consumed,
		ElapsedMs:     seconds * 1000,
		RecordsPerSec: float64(consumed) / seconds,
		MbPerSec:      float64(bytes) / seconds / 1e6,
	}
}

// copyExactlyOnce is the exactly-once loop: read_committed input, one
// transaction per poll (at most `perTxn` records) carrying the records'
// copies and the group's offsets, until `count` records are committed.
func copyExactlyOnce(seeds []string, input, output, group string, count, perTxn int) report {
	if output == "" || group == "" {
		fail("-output and -group are required for -mode copy")
	}
	session, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(seeds...),
		kgo.TransactionalID(group+"-txn"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.DefaultProduceTopic(output),
	)
	if err != nil {
		fail(err.Error())
	}
	defer session.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	started := time.Now()
	copied, bytes := 0, 0
	for copied < count {
		fetches := session.PollRecords(ctx, perTxn)
		if ctx.Err() != nil {
			fail(fmt.Sprintf("copied %d of %d within 120 s", copied, count))
		}
		fetches.EachError(func(t string, p int32, err error) {
			fail(fmt.Sprintf("%s[%d]: %v", t, p, err))
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := session.Begin(); err != nil {
			fail(err.Error())
		}
		batchBytes := 0
		fetches.EachRecord(func(r *kgo.Record) {
			value := append([]byte("T:"), r.Value...)
			batchBytes += len(r.Value)
			// A failed record makes End abort (the session tracks it).
			session.Produce(ctx, &kgo.Record{Key: r.Key, Value: value}, nil)
		})
		committed, err := session.End(ctx, kgo.TryCommit)
		if err != nil {
			fail(err.Error())
		}
		if committed {
			copied += fetches.NumRecords()
			bytes += batchBytes
		}
	}
	seconds := time.Since(started).Seconds()
	return report{
		Records:       copied,
		ElapsedMs:     seconds * 1000,
		RecordsPerSec: float64(copied) / seconds,
		MbPerSec:      float64(bytes) / seconds / 1e6,
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(1)
}
