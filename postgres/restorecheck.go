package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/openpca/openpca/sqlstore"
)

// A restore checks a database that a dump made: SQL that ran as the
// role restoring it, and may have been edited to leave what runs, or
// changes what servers trust, in every server after. Its checks run on a
// checkConn, and refuse what they find: Foreign first, then SchemaDiffs.

// checkWait bounds each of the checks' waits for a lock: a dump may leave
// a prepared transaction that holds one for good (Foreign refuses it).
// checkTime bounds each of their statements.
const (
	checkWait = 10 * time.Second
	checkTime = time.Minute
)

// tunables are the settings that a role or the database may give
// servers' sessions, which Foreign takes: those an operator tunes a
// database by (timeouts, memory, the planner's costs, logging), which
// change no answer a query gives. Any other (search_path, to put a
// schema of the dump's first; transform_null_equals or
// standard_conforming_strings, which change what a query means;
// default_transaction_read_only; the planner's enable_ switches) is
// refused: a setting of the role holds in every database, and a dump
// may set it on its own role.
var tunables = []string{
	"application_name", "effective_cache_size", "idle_in_transaction_session_timeout", "idle_session_timeout", "jit",
	"lock_timeout", "log_min_duration_statement", "log_statement", "maintenance_work_mem", "random_page_cost",
	"seq_page_cost", "statement_timeout", "temp_buffers", "timezone", "work_mem",
}

// checkConn is a connection to a restored database on which no code of
// the database's own runs: its search path is PostgreSQL's own schema
// alone, from its first statement on, so that no function or operator
// the dump made (public.=(text, text), say, put first by a setting of
// the role) takes the place of PostgreSQL's in the checks' queries. It
// runs none of a server's session defaults, which query by the search
// path the role's settings give.
type checkConn struct {
	db   *sql.DB
	conn *sql.Conn
	// schema is the schema whose tables the servers read, the first of
	// the search path that exists, by name and oid.
	schema    string
	schemaOID uint32
}

func openCheck(ctx context.Context, dsn, session string) (*checkConn, error) {
	cfg, err := connConfig(dsn, session)
	if err != nil {
		return nil, err
	}
	// Over what the role may set (a statement_timeout of 1 ms would hide
	// the setting the checks are to find): in the connection's start,
	// whose settings a role's do not override, so that they bound every
	// statement. Set by the first statement instead, they bounded that
	// one, which a loaded machine ran past 1 ms.
	for name, value := range map[string]string{"lock_timeout": ms(checkWait), "statement_timeout": ms(checkTime),
		"idle_in_transaction_session_timeout": "0", "default_transaction_read_only": "off"} {
		cfg.RuntimeParams[name] = value
	}
	db := stdlib.OpenDB(*cfg)
	c := &checkConn{db: db}
	c.conn, err = db.Conn(ctx)
	if err == nil {
		// Called by its schema, which no search path changes.
		var schema sql.NullString
		err = c.conn.QueryRowContext(ctx, `SELECT pg_catalog.current_schema()`).Scan(&schema)
		c.schema = schema.String
	}
	if err == nil {
		_, err = c.conn.ExecContext(ctx, `SET search_path = pg_catalog`)
	}
	if err == nil && c.schema != "" {
		err = c.conn.QueryRowContext(ctx, `SELECT oid FROM pg_namespace WHERE nspname = $1`, c.schema).Scan(&c.schemaOID)
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *checkConn) close() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.db.Close()
}

// Foreign returns what a restored database has, of what OpenPCA's
// migrations make none of, that would run at servers' changes, answer in
// place of its tables, change their rows from elsewhere, or hold them
// back: functions, in any schema but PostgreSQL's own; triggers and rules
// on any table; tables that inherit from its tables, or they from others;
// views, foreign tables, row-level security and check constraints in its
// schema; defaults that are no constant (one that calls PostgreSQL's own
// set_config, say: it leaves no trace in the catalogue's dependencies);
// what its tables, their defaults, constraints and indexes use that
// PostgreSQL did not make (a function, an operator, a type or domain, a
// collation), an extension's included; event triggers; subscriptions and
// publications; settings of the database, and of the role in any
// database, but tunables (a dump made with --create holds the first; the
// role may set the second on itself: a search path that puts a schema of
// the dump's before PostgreSQL's own); prepared transactions, which hold
// their locks for good; the operator log's identity sequence behind its
// rows, or far past them (operatorLogSequence); and privileges on its
// tables, their identity
// sequences and columns granted to PUBLIC, or to another role than their
// owner beyond SELECT, CREATE on its schema or on the database granted
// to another (who could make a schema of the servers' role's name, which
// the search path puts first), and default privileges of the tables'
// owner that grant others more than to read or use (through which another
// login could undo a key's revocation, say). An extension's objects are
// left out otherwise (pg_stat_statements' views, say), if a superuser
// owns them, as an extension's script makes them: the role may add
// objects of its own to an extension (ALTER EXTENSION ... ADD). A
// superuser's dump can do what no look at the catalogue finds (replace a
// function of PostgreSQL's own). The tables' own definitions are
// SchemaDiffs' to compare.
func Foreign(ctx context.Context, dsn, session string) ([]string, error) {
	c, err := openCheck(ctx, dsn, session)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if c.schema == "" {
		return nil, nil // no schema: opening the database refuses it
	}
	m, _ := fs.Sub(migrations, "migrations")
	tables, err := ownTables(m)
	if err != nil {
		return nil, err
	}
	rows, err := c.conn.QueryContext(ctx, `
		WITH ours AS (SELECT $1::oid AS ns),
		superusers AS (SELECT oid FROM pg_roles WHERE rolsuper),
		extensions AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
		system AS (SELECT oid FROM pg_namespace WHERE nspname IN ('pg_catalog', 'information_schema') OR nspname LIKE 'pg\_toast%' OR nspname LIKE 'pg\_temp\_%'),
		own AS (SELECT c.oid FROM pg_class c, ours WHERE c.relnamespace = ours.ns AND c.relname = ANY($2)),
		owned AS (SELECT oid FROM own UNION SELECT objid FROM pg_depend WHERE classid = 'pg_class'::regclass AND deptype = 'i' AND refobjid IN (SELECT oid FROM own))
		SELECT 'function ' || p.pronamespace::regnamespace || '.' || p.proname FROM pg_proc p
			WHERE p.pronamespace NOT IN (SELECT oid FROM system)
			AND (('pg_proc'::regclass, p.oid) NOT IN (SELECT * FROM extensions) OR p.proowner NOT IN (SELECT oid FROM superusers))
		UNION ALL SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass FROM pg_trigger t
			WHERE NOT t.tgisinternal AND ('pg_trigger'::regclass, t.oid) NOT IN (SELECT * FROM extensions)
		UNION ALL SELECT 'rule ' || r.rulename || ' on ' || r.ev_class::regclass FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
			WHERE r.rulename <> '_RETURN' AND c.relnamespace NOT IN (SELECT oid FROM system) AND ('pg_rewrite'::regclass, r.oid) NOT IN (SELECT * FROM extensions)
		UNION ALL SELECT 'table ' || i.inhrelid::regclass || ', which inherits from ' || i.inhparent::regclass FROM pg_inherits i
			JOIN pg_class child ON child.oid = i.inhrelid JOIN pg_class parent ON parent.oid = i.inhparent, ours
			WHERE ours.ns IN (child.relnamespace, parent.relnamespace)
		UNION ALL SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' ELSE 'foreign table ' END || c.relname FROM pg_class c, ours
			WHERE c.relnamespace = ours.ns AND c.relkind IN ('v', 'm', 'f')
			AND (('pg_class'::regclass, c.oid) NOT IN (SELECT * FROM extensions) OR c.relowner NOT IN (SELECT oid FROM superusers))
		UNION ALL SELECT 'row-level security on ' || c.relname FROM pg_class c, ours
			WHERE c.relnamespace = ours.ns AND (c.relrowsecurity OR c.relforcerowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))
		UNION ALL SELECT 'event trigger ' || e.evtname FROM pg_event_trigger e
			WHERE ('pg_event_trigger'::regclass, e.oid) NOT IN (SELECT * FROM extensions)
		UNION ALL SELECT 'check constraint ' || n.conname || ' on ' || n.conrelid::regclass FROM pg_constraint n, ours
			WHERE n.connamespace = ours.ns AND n.contype = 'c'
		UNION ALL SELECT 'default of ' || pg_describe_object('pg_class'::regclass, a.adrelid, a.adnum) || ', which is no constant' FROM pg_attrdef a
			JOIN pg_class c ON c.oid = a.adrelid, ours
			WHERE c.relnamespace = ours.ns AND pg_get_expr(a.adbin, a.adrelid) !~ '^(''[^'']*''::[a-z ]+|-?[0-9]+|true|false)$'
		UNION ALL SELECT pg_describe_object(d.refclassid, d.refobjid, 0) || ', which ' || pg_describe_object(d.classid, d.objid, d.objsubid) || ' uses' FROM pg_depend d, ours
			WHERE d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass, 'pg_type'::regclass, 'pg_collation'::regclass) AND d.refobjid >= 16384
			AND ours.ns = CASE d.classid
				WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
				WHEN 'pg_constraint'::regclass THEN (SELECT c.relnamespace FROM pg_constraint n JOIN pg_class c ON c.oid = n.conrelid WHERE n.oid = d.objid)
				WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid) END
		UNION ALL SELECT 'subscription ' || subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		UNION ALL SELECT 'publication ' || pubname FROM pg_publication
		UNION ALL SELECT 'setting ' || x.setting || CASE WHEN setdatabase = 0 THEN ' of role ' || setrole::regrole || ', in every database'
				WHEN setrole = 0 THEN ' of the database' ELSE ' of role ' || setrole::regrole || ' in the database' END
			FROM pg_db_role_setting, unnest(setconfig) AS x(setting)
			WHERE (setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
				OR setdatabase = 0 AND setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user))
			AND lower(split_part(x.setting, '=', 1)) <> ALL ($3)
		UNION ALL SELECT 'privilege CREATE on the database granted to ' || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
			FROM pg_database d, aclexplode(d.datacl) x
			WHERE d.datname = current_database() AND x.grantee <> d.datdba AND x.privilege_type = 'CREATE'
		UNION ALL SELECT 'prepared transaction ' || gid FROM pg_prepared_xacts WHERE database = current_database()
		UNION ALL SELECT 'privilege ' || x.privilege_type || ' on ' || c.relname || ' granted to ' || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
			FROM pg_class c, aclexplode(c.relacl) x
			WHERE c.oid IN (SELECT oid FROM owned) AND x.grantee <> c.relowner AND (x.grantee = 0 OR x.privilege_type <> 'SELECT')
		UNION ALL SELECT 'privilege ' || x.privilege_type || ' on column ' || a.attname || ' of ' || c.relname || ' granted to ' || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
			FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid, aclexplode(a.attacl) x
			WHERE c.oid IN (SELECT oid FROM own) AND x.grantee <> c.relowner AND (x.grantee = 0 OR x.privilege_type <> 'SELECT')
		UNION ALL SELECT 'privilege CREATE on schema ' || n.nspname || ' granted to ' || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END
			FROM pg_namespace n, aclexplode(n.nspacl) x, ours
			WHERE n.oid = ours.ns AND x.grantee <> n.nspowner AND x.privilege_type = 'CREATE'
		UNION ALL SELECT 'default privilege ' || x.privilege_type || ' granted to ' || CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END || ' by ' || d.defaclrole::regrole
			FROM pg_default_acl d, aclexplode(d.defaclacl) x, ours
			WHERE d.defaclnamespace IN (0, ours.ns) AND d.defaclrole IN (SELECT relowner FROM pg_class WHERE oid IN (SELECT oid FROM own))
			AND x.grantee <> d.defaclrole AND x.privilege_type NOT IN ('SELECT', 'USAGE', 'EXECUTE')
		ORDER BY 1 LIMIT 10`, c.schemaOID, tables, tunables)
	if err != nil {
		return nil, fmt.Errorf("reading the database's schema: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		found = append(found, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if f, err := c.operatorLogSequence(ctx); f != "" || err != nil {
		found = append(found, f)
		return found, err
	}
	return found, nil
}

// operatorLogSequence says how the operator log's identity sequence is
// off its rows, if it is: behind its last row, the next record of an
// operator's command collides with it; set far past it (toward its end),
// every record fails; either switches the log off. A server leaves it
// somewhat past, as a record rolled back keeps the number it took.
func (c *checkConn) operatorLogSequence(ctx context.Context) (string, error) {
	table := pgx.Identifier{c.schema, "operator_actions"}.Sanitize()
	var exists bool
	if err := c.conn.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
		return "", err // a dump of a version before the table
	}
	var at sql.NullInt64
	var last int64
	if err := c.conn.QueryRowContext(ctx, `SELECT (SELECT last_value FROM pg_sequences
			WHERE format('%I.%I', schemaname, sequencename)::regclass = pg_get_serial_sequence($1, 'seq')::regclass),
			COALESCE((SELECT max(seq) FROM `+table+`), 0)`, table).Scan(&at, &last); err != nil {
		return "", err
	}
	if at.Int64 < last || at.Int64-last > operatorLogSlack {
		return fmt.Sprintf("the identity sequence of operator_actions at %d, off its last row, %d", at.Int64, last), nil
	}
	return "", nil
}

// operatorLogSlack is how far past the operator log's last row its
// sequence may be: far more than records rolled back ever take.
const operatorLogSlack = 1 << 32

// SchemaDiffs compares OpenPCA's tables in a restored database with those
// this version's migrations make, up to the migration the database has:
// their columns (type, nullability, default, identity, collation),
// constraints (primary and foreign keys, uniqueness), indexes, whether
// they are logged, and the identity sequences' parameters; also the
// constraints of other tables that refer to them. It returns how they
// differ (sqlstore.SchemaDiffs), none if the database has no schema of
// OpenPCA's or one of a later version, which opening it refuses. Servers
// trust the schema to keep what the rows may hold (one serial per
// certificate of a CA), to keep what commits through a crash (an unlogged
// table does not), and to answer in bounded time; a dump edited to change
// it would change that for every server after.
//
// Storage parameters, of tables and of indexes (autovacuum's settings, a
// fill factor), are left out: an operator may tune them.
//
// The migrations are made again in the session's temporary schema, in a
// transaction that is rolled back: the role needs the TEMPORARY privilege
// on the database (PUBLIC has it, unless revoked), and nothing is left.
// Run it once Foreign finds nothing: an event trigger would run at the
// migrations' statements.
func SchemaDiffs(ctx context.Context, dsn, session string) ([]string, error) {
	c, err := openCheck(ctx, dsn, session)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if c.schema == "" {
		return nil, nil
	}
	tx, err := c.conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var version sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT MAX(version) FROM `+pgx.Identifier{c.schema, "schema_migrations"}.Sanitize()).Scan(&version)
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "42P01" || err == nil && !version.Valid {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, _ := fs.Sub(migrations, "migrations")
	tables, err := ownTables(m)
	if err != nil {
		return nil, err
	}
	names, versions, err := sqlstore.Migrations(m)
	if err != nil {
		return nil, err
	}
	if version.Int64 > int64(slices.Max(versions)) {
		return nil, nil
	}
	have, err := describeSchema(ctx, tx, c.schemaOID, tables)
	if err != nil {
		return nil, fmt.Errorf("reading the database's schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO pg_temp`); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, sqlstore.MigrationsTable); err != nil {
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "42501" {
			err = fmt.Errorf("the role needs the TEMPORARY privilege on the database: %w", err)
		}
		return nil, freshError(err)
	}
	for i, name := range names {
		if int64(versions[i]) > version.Int64 {
			break
		}
		body, err := fs.ReadFile(m, name)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return nil, freshError(fmt.Errorf("%s: %w", name, err))
		}
	}
	var temp uint32
	if err := tx.QueryRowContext(ctx, `SELECT pg_my_temp_schema()`).Scan(&temp); err != nil {
		return nil, freshError(err)
	}
	want, err := describeSchema(ctx, tx, temp, tables)
	if err != nil {
		return nil, freshError(err)
	}
	return sqlstore.SchemaDiffs(have, want), nil
}

func freshError(err error) error {
	return fmt.Errorf("making the migrations' schema in a temporary one, to compare: %w", err)
}

// describeSchema returns the definitions of the tables named, in the
// schema of the oid given, and of what belongs to them, by object, as
// SchemaDiffs compares them. Names of objects are the same in any schema;
// the schema itself is taken out of the definitions of indexes, which
// always name it (the temporary one as pg_temp), and of foreign keys,
// which name it unless it is on the search path. An object found twice
// (a sequence that a column owns beside its identity's) differs from one
// found once.
func describeSchema(ctx context.Context, tx *sql.Tx, schema uint32, tables []string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `
		WITH ns AS (SELECT oid, CASE WHEN oid = pg_my_temp_schema() THEN 'pg_temp' ELSE quote_ident(nspname) END AS name FROM pg_namespace WHERE oid = $2),
		t AS (SELECT c.oid, c.relname, c.relkind, c.relpersistence FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relname = ANY($1))
		SELECT 'table ' || t.relname, t.relkind::text || CASE WHEN t.relpersistence = 'u' THEN ' unlogged' ELSE '' END FROM t
		UNION ALL SELECT 'column ' || a.attname || ' of table ' || t.relname,
			format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
			|| COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
			|| CASE a.attidentity WHEN 'a' THEN ' always as identity' WHEN 'd' THEN ' by default as identity' ELSE '' END
			|| CASE a.attgenerated WHEN 's' THEN ' generated' ELSE '' END
			|| CASE WHEN a.attcollation <> y.typcollation THEN ' collate ' || a.attcollation::regcollation ELSE '' END
			FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
			JOIN pg_type y ON y.oid = a.atttypid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		UNION ALL SELECT 'index ' || i.relname || ' of table ' || t.relname,
			regexp_replace(replace(pg_get_indexdef(x.indexrelid), ' ON ' || ns.name || '.', ' ON '), ' WITH \([^)]*\)', '')
			|| CASE WHEN x.indisvalid THEN '' ELSE ' (invalid)' END
			FROM t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid, ns
		UNION ALL SELECT 'constraint ' || n.conname || ' of table ' || CASE WHEN r.relnamespace = ns.oid THEN r.relname ELSE r.oid::regclass::text END,
			replace(pg_get_constraintdef(n.oid), ' REFERENCES ' || ns.name || '.', ' REFERENCES ')
			FROM pg_constraint n JOIN pg_class r ON r.oid = n.conrelid, ns
			WHERE n.conrelid IN (SELECT oid FROM t) OR n.confrelid IN (SELECT oid FROM t)
		UNION ALL SELECT 'sequence of column ' || a.attname || ' of table ' || t.relname,
			format_type(s.seqtypid, NULL) || ' from ' || s.seqstart || ' by ' || s.seqincrement || ' in ' || s.seqmin || ' to ' || s.seqmax
			|| ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
			FROM t JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
			JOIN pg_sequence s ON s.seqrelid = d.objid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid`, tables, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	objects := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		if _, twice := objects[name]; twice {
			def = objects[name] + "\n" + def
		}
		objects[name] = def
	}
	return objects, rows.Err()
}
