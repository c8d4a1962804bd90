-- How often the relay handed a row to the producer. An unpublished row with
-- attempts > 0 may already be on Kafka (its relay died between the broker's
-- acknowledgement and the mark): the relay looks for it in the topic before
-- producing it again (relay.c).
ALTER TABLE outbox ADD COLUMN attempts int NOT NULL DEFAULT 0;
