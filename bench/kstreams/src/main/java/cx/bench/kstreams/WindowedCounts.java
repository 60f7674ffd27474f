package cx.bench.kstreams;

import com.fasterxml.jackson.core.JsonEncoding;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyWindowStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * (D) the benchmark's windowed counts with Kafka Streams, written as its documentation suggests.
 *
 * <p>Event time from {@code occurred_at} (a TimestampExtractor on the parsed value), each
 * response flat-mapped into its 4 (channel, queue) segment keys, one repartition by segment,
 * {@code groupByKey}, then one tumbling-window {@code count()} per bucket width into a RocksDB
 * window store with its changelog, at-least-once. Once every segment record has reached the
 * counts, the stores are read with interactive queries and written as JSON for bench/run.py to
 * compare with A's counts.
 */
public final class WindowedCounts {
  private static final String UNASSIGNED = "unassigned";

  private WindowedCounts() {}

  record Window(String name, long widthMs) {
    String store() {
      return "counts-" + name;
    }
  }

  record Args(
      String bootstrap,
      String topic,
      String applicationId,
      long events,
      int threads,
      String stateDir,
      File output,
      List<Window> windows,
      long graceMs,
      long timeoutMs) {

    static Args parse(String[] argv) {
      Map<String, String> one = new HashMap<>();
      List<Window> windows = new ArrayList<>();
      for (int i = 0; i + 1 < argv.length; i += 2) {
        if (argv[i].equals("--window")) {
          String[] parts = argv[i + 1].split(":", 2);
          windows.add(new Window(parts[0], Long.parseLong(parts[1]) * 1000));
        } else {
          one.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
      }
      if (windows.isEmpty()) {
        throw new IllegalArgumentException("at least one --window NAME:SECONDS is needed");
      }
      return new Args(
          required(one, "bootstrap"),
          required(one, "topic"),
          required(one, "application-id"),
          Long.parseLong(required(one, "events")),
          Integer.parseInt(one.getOrDefault("threads", "1")),
          required(one, "state-dir"),
          new File(required(one, "output")),
          windows,
          (long) (Double.parseDouble(required(one, "grace-seconds")) * 1000),
          (long) (Double.parseDouble(one.getOrDefault("timeout-seconds", "600")) * 1000));
    }

    private static String required(Map<String, String> given, String name) {
      String value = given.get(name);
      if (value == null) {
        throw new IllegalArgumentException("--" + name + " is required");
      }
      return value;
    }
  }

  /** The first input and the moment the last expected segment record reached the counts. */
  static final class Progress {
    final AtomicLong inputs = new AtomicLong();
    final AtomicLong segments = new AtomicLong();
    final CountDownLatch done = new CountDownLatch(1);
    final long expectedSegments;
    volatile long firstNanos;
    volatile long lastNanos;

    Progress(long expectedSegments) {
      this.expectedSegments = expectedSegments;
    }

    void input() {
      if (inputs.getAndIncrement() == 0) {
        firstNanos = System.nanoTime();
      }
    }

    void segment() {
      if (segments.incrementAndGet() == expectedSegments) {
        lastNanos = System.nanoTime();
        done.countDown();
      }
    }
  }

  static List<KeyValue<String, Integer>> segments(Response response) {
    String channel = response.channel();
    String queue =
        response.queue() == null || response.queue().isEmpty() ? UNASSIGNED : response.queue();
    // The value is a unit: a count needs only the key and the record's (event) timestamp.
    return List.of(
        KeyValue.pair(channel + "|" + queue, 1),
        KeyValue.pair(channel + "|all", 1),
        KeyValue.pair("all|" + queue, 1),
        KeyValue.pair("all|all", 1));
  }

  static Topology topology(Args args, Progress progress) {
    StreamsBuilder builder = new StreamsBuilder();
    Consumed<String, Response> consumed =
        Consumed.with(Serdes.String(), Response.serde()).withTimestampExtractor(new OccurredAt());
    // An explicit repartition (what groupByKey after flatMap would insert) so that the counter
    // sits after it: one repartition topic shared by the 4 windowed counts.
    KGroupedStream<String, Integer> grouped =
        builder.stream(args.topic(), consumed)
            .peek((key, value) -> progress.input())
            .flatMap((key, value) -> segments(value))
            .repartition(
                Repartitioned.with(Serdes.String(), Serdes.Integer()).withName("segments"))
            .peek((key, value) -> progress.segment())
            .groupByKey(Grouped.with(Serdes.String(), Serdes.Integer()));
    for (Window window : args.windows()) {
      grouped
          .windowedBy(
              TimeWindows.ofSizeAndGrace(
                  Duration.ofMillis(window.widthMs()), Duration.ofMillis(args.graceMs())))
          .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as(window.store()));
    }
    return builder.build();
  }

  static Properties config(Args args) {
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.applicationId());
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.bootstrap());
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.threads());
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.stateDir());
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    return props;
  }

  record Row(String segment, String window, long bucket, long count) {}

  /** Every (segment, bucket) count of one window store, once they add up to the expected. */
  static List<Row> readStore(KafkaStreams streams, Window window, long expected, long deadline)
      throws InterruptedException {
    while (true) {
      List<Row> rows = new ArrayList<>();
      long total = 0;
      try {
        ReadOnlyWindowStore<String, Long> store =
            streams.store(
                StoreQueryParameters.fromNameAndType(
                    window.store(), QueryableStoreTypes.<String, Long>windowStore()));
        try (KeyValueIterator<Windowed<String>, Long> all = store.all()) {
          while (all.hasNext()) {
            KeyValue<Windowed<String>, Long> next = all.next();
            long bucket = next.key.window().start() / window.widthMs();
            rows.add(new Row(next.key.key(), window.name(), bucket, next.value));
            total += next.value;
          }
        }
        // The counter runs just before the counts: the last record may still be on its way.
        if (total >= expected) {
          return rows;
        }
      } catch (InvalidStateStoreException migrating) {
        // a rebalance is moving the store: ask again
      }
      if (System.currentTimeMillis() > deadline) {
        throw new IllegalStateException(
            window.store() + " holds " + total + " of " + expected + " counted segment records");
      }
      Thread.sleep(100);
    }
  }

  static void write(Args args, Progress progress, List<Row> rows) throws IOException {
    double seconds = (progress.lastNanos - progress.firstNanos) / 1e9;
    long inputs = progress.inputs.get();
    try (JsonGenerator json =
        new ObjectMapper().getFactory().createGenerator(args.output(), JsonEncoding.UTF8)) {
      json.writeStartObject();
      json.writeNumberField("events", inputs);
      json.writeNumberField("seconds", seconds);
      json.writeNumberField("events_per_s", inputs / seconds);
      json.writeNumberField("threads", args.threads());
      json.writeNumberField("segment_records", progress.segments.get());
      json.writeArrayFieldStart("counts");
      for (Row row : rows) {
        String[] segment = row.segment().split("\\|", 2);
        json.writeStartArray();
        json.writeString(segment[0]);
        json.writeString(segment[1]);
        json.writeString(row.window());
        json.writeNumber(row.bucket());
        json.writeNumber(row.count());
        json.writeEndArray();
      }
      json.writeEndArray();
      json.writeEndObject();
    }
  }

  public static void main(String[] argv) throws Exception {
    Args args = Args.parse(argv);
    long expected = args.events() * 4;
    Progress progress = new Progress(expected);
    KafkaStreams streams = new KafkaStreams(topology(args, progress), config(args));
    AtomicLong failed = new AtomicLong();
    streams.setUncaughtExceptionHandler(
        error -> {
          error.printStackTrace();
          failed.incrementAndGet();
          return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    long deadline = System.currentTimeMillis() + args.timeoutMs();
    streams.start();
    try {
      while (!progress.done.await(100, TimeUnit.MILLISECONDS)) {
        if (failed.get() > 0 || streams.state() == KafkaStreams.State.ERROR) {
          throw new IllegalStateException("Kafka Streams stopped: " + streams.state());
        }
        if (System.currentTimeMillis() > deadline) {
          throw new IllegalStateException(
              "timed out: " + progress.segments.get() + " of " + expected + " segment records");
        }
      }
      List<Row> rows = new ArrayList<>();
      for (Window window : args.windows()) {
        rows.addAll(readStore(streams, window, expected, deadline));
      }
      write(args, progress, rows);
    } finally {
      streams.close(Duration.ofSeconds(60));
    }
  }
}
