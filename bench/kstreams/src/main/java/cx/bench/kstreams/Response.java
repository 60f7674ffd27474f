package cx.bench.kstreams;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/** The fields of a canonical SurveyResponse v1 that the windowed counts use. */
@JsonIgnoreProperties(ignoreUnknown = true)
record Response(
    @JsonProperty("channel") String channel,
    @JsonProperty("queue") String queue,
    @JsonProperty("occurred_at") String occurredAt) {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Reads JSON; the peer never writes a Response back to Kafka. */
  static Serde<Response> serde() {
    Deserializer<Response> read =
        (topic, data) -> {
          try {
            return JSON.readValue(data, Response.class);
          } catch (IOException error) {
            throw new SerializationException("not a SurveyResponse", error);
          }
        };
    Serializer<Response> write =
        (topic, value) -> {
          throw new UnsupportedOperationException("responses are only read");
        };
    return Serdes.serdeFrom(write, read);
  }
}
