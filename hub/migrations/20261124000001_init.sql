-- Emberline's hub schema (design §5): what `emberline-hub write` stores and the dashboard reads.
--
-- Duplicates die here: every table fed from Kafka has a natural key (reading_id, the source
-- record's topic/partition/offset, agent + sent_at), and the writer inserts with
-- ON CONFLICT DO NOTHING. Latest-state tables move forward only by the record's own timestamp.

-- Every reading taken in, as the agent accepted it.
CREATE TABLE readings (
    reading_id         text PRIMARY KEY,
    source_name        text NOT NULL,
    agent_id           text NOT NULL,
    protocol           text NOT NULL,
    -- The reading's own timestamp (the device's clock).
    observed_at        timestamptz NOT NULL,
    -- When the agent committed it to its buffer (the agent's clock).
    received_at        timestamptz NOT NULL,
    latitude           double precision NOT NULL,
    longitude          double precision NOT NULL,
    temperature        double precision NOT NULL,
    humidity           double precision NOT NULL,
    wind_speed         double precision NOT NULL,
    wind_direction     double precision NOT NULL,
    vegetation_density double precision NOT NULL,
    air_quality_index  double precision NOT NULL,
    -- The reading exactly as the device sent it, extra fields and `seq` included.
    payload            jsonb NOT NULL,
    written_at         timestamptz NOT NULL DEFAULT now()
);
-- Time windows (`/data`, `since`) and retention.
CREATE INDEX readings_observed_at_idx ON readings (observed_at);
-- One sensor's history, newest first.
CREATE INDEX readings_source_observed_idx ON readings (source_name, observed_at DESC);

-- The detector's verdict on a reading; the first one stored wins (a replay under other rules
-- does not rewrite history; `rules_version` says which rules decided).
CREATE TABLE classifications (
    reading_id       text PRIMARY KEY REFERENCES readings (reading_id) ON DELETE CASCADE,
    source_name      text NOT NULL,
    observed_at      timestamptz NOT NULL,
    intensity        text NOT NULL CHECK (intensity IN ('low', 'medium', 'high')),
    confidence_score double precision NOT NULL,
    rules_fired      jsonb NOT NULL,
    rules_version    text NOT NULL,
    detected_at      timestamptz NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now()
);
-- `/data` (classified readings in time order) and the latest alerts of one intensity.
CREATE INDEX classifications_observed_at_idx ON classifications (observed_at);
CREATE INDEX classifications_intensity_observed_idx
    ON classifications (intensity, observed_at DESC);

-- Latest state per sensor, for the map: one row per sensor. The position columns follow the
-- newest reading; the intensity columns follow the newest classified reading. Both move only
-- forward in (observed_at, reading_id) order, so a late back-filled reading never overwrites them.
CREATE TABLE sensors (
    source_name                 text PRIMARY KEY,
    reading_id                  text NOT NULL,
    agent_id                    text NOT NULL,
    observed_at                 timestamptz NOT NULL,
    latitude                    double precision NOT NULL,
    longitude                   double precision NOT NULL,
    payload                     jsonb NOT NULL,
    classified_reading_id       text,
    classified_observed_at      timestamptz,
    intensity                   text CHECK (intensity IN ('low', 'medium', 'high')),
    confidence_score            double precision,
    rules_fired                 jsonb,
    rules_version               text,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sensors_intensity_idx ON sensors (intensity, classified_observed_at DESC);
CREATE INDEX sensors_observed_at_idx ON sensors (observed_at);

-- Every heartbeat relayed by the bridges (history, pruned by retention).
CREATE TABLE agent_heartbeats (
    agent_id                    text NOT NULL,
    sent_at                     timestamptz NOT NULL,
    version                     text NOT NULL,
    buffer_depth                bigint NOT NULL,
    buffer_bytes                bigint NOT NULL,
    oldest_buffered_age_seconds double precision,
    written_at                  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, sent_at)
);
CREATE INDEX agent_heartbeats_sent_at_idx ON agent_heartbeats (sent_at);

-- Latest heartbeat per agent, for the health panel; moves forward only by `sent_at`.
CREATE TABLE agents (
    agent_id                    text PRIMARY KEY,
    last_seen_at                timestamptz NOT NULL,
    version                     text NOT NULL,
    buffer_depth                bigint NOT NULL,
    buffer_bytes                bigint NOT NULL,
    oldest_buffered_age_seconds double precision,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Records that can never be processed, also sent to the `.dlq` topics.
CREATE TABLE dead_letters (
    id               bigserial PRIMARY KEY,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    error_code       text NOT NULL,
    error            text NOT NULL,
    record_key       bytea,
    payload          bytea,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_recorded_at_idx ON dead_letters (recorded_at);
