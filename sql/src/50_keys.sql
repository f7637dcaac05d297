
-- ---------------------------------------------------------------------------
-- Keys the hub assigns (issue 13, docs/replication.md): a client's new row
-- whose integer key (one the database assigns: serial, identity, a nextval
-- default) is already another record's on the hub gets a new key from the
-- hub's sequence. The client learns it in the upload's reply and renames
-- its row, its references and its queued changes; until it acknowledges
-- the upload the hub keeps the rename here, so a reply lost in a crash is
-- given again, and the client's later changes that still name the old key
-- are followed to the new one.
-- ---------------------------------------------------------------------------
CREATE TABLE sync_key_renames (
	node_id     uuid NOT NULL,
	seq         bigint NOT NULL,		-- the client's queue seq of the insert
	table_name  text NOT NULL,
	key_column  text NOT NULL,
	old_key     bigint NOT NULL,
	new_key     bigint NOT NULL,
	renamed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (node_id, seq)
);
COMMENT ON TABLE sync_key_renames IS 'syncq: client rows given a new key by the hub, kept until the client acknowledges the upload';
SELECT pg_catalog.pg_extension_config_dump('sync_key_renames', '');
