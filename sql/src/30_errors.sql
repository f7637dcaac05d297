
-- ---------------------------------------------------------------------------
-- Poison changes (docs/daemon.md): a client change the hub cannot apply (a
-- constraint it violates, a column or table the hub does not have, a value
-- its type refuses) is set aside here by syncqd, in the same transaction
-- that moves the client's upload position past it, so the changes behind it
-- still go through. syncqd retries the rows of a client on its later syncs;
-- once one applies (the cause was fixed) or is overruled by a later change
-- of its row, it is deleted. Deleting a row by hand drops the change.
-- ---------------------------------------------------------------------------

CREATE TABLE sync_errors (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	node_id      uuid NOT NULL,           -- the client that uploaded it
	seq          bigint NOT NULL,         -- its seq in that client's queue
	table_name   text NOT NULL,
	op           text NOT NULL CHECK (op IN ('I', 'U', 'D')),
	pk           json NOT NULL,
	row_data     json,
	changed_at   timestamptz NOT NULL,
	origin       uuid NOT NULL,
	priority     text NOT NULL CHECK (priority IN ('immediate', 'batched')),
	error        text NOT NULL,           -- why it was refused, the last time
	sqlstate     text,                    -- the error's SQLSTATE, when the hub raised it
	first_failed timestamptz NOT NULL DEFAULT now(),
	last_failed  timestamptz NOT NULL DEFAULT now(),
	attempts     integer NOT NULL DEFAULT 1,
	UNIQUE (node_id, seq)
);
COMMENT ON TABLE sync_errors IS 'syncq: uploaded changes the hub could not apply, kept with the reason and retried by syncqd';
SELECT pg_catalog.pg_extension_config_dump('sync_errors', '');
SELECT pg_catalog.pg_extension_config_dump(
	pg_catalog.pg_get_serial_sequence('@extschema@.sync_errors', 'id')::pg_catalog.regclass, '');
