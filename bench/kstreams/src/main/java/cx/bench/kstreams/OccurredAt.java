package cx.bench.kstreams;

import java.time.OffsetDateTime;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

/** Event time: the response's {@code occurred_at} (RFC 3339), as the worker's windows use. */
final class OccurredAt implements TimestampExtractor {
  @Override
  public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
    Response response = (Response) record.value();
    return OffsetDateTime.parse(response.occurredAt()).toInstant().toEpochMilli();
  }
}
