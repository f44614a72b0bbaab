package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openpca/openpca/sqlstore"
)

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
// The tables' storage parameters (autovacuum's settings, a fill factor)
// are left out: an operator may tune them, and they change no answer.
//
// The migrations are made again in the session's temporary schema, in a
// transaction that is rolled back: the role needs the TEMPORARY privilege
// on the database (PUBLIC has it, unless revoked), and nothing is left.
func SchemaDiffs(ctx context.Context, dsn, session string) ([]string, error) {
	db, err := openDB(dsn, session)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var version sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version)
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
	names, err := fs.Glob(m, "*.sql")
	if err != nil {
		return nil, err
	}
	var apply []string
	for _, name := range names {
		var v int64
		if _, err := fmt.Sscanf(name, "%d_", &v); err != nil {
			return nil, fmt.Errorf("migration %s: name must start with its number", name)
		}
		if v <= version.Int64 {
			apply = append(apply, name)
		}
	}
	if len(apply) == len(names) && version.Int64 > int64(len(names)) {
		return nil, nil
	}
	// Read before the temporary tables are made, which would hide the
	// restored ones of the same names from the search path (and so name
	// them with their schema in the constraints' definitions).
	have, err := describeSchema(ctx, tx, `current_schema()::regnamespace`, tables)
	if err != nil {
		return nil, fmt.Errorf("reading the database's schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO pg_temp`); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, sqlstore.MigrationsTable); err != nil {
		return nil, freshError(err)
	}
	for _, name := range apply {
		body, err := fs.ReadFile(m, name)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return nil, freshError(fmt.Errorf("%s: %w", name, err))
		}
	}
	want, err := describeSchema(ctx, tx, `pg_my_temp_schema()`, tables)
	if err != nil {
		return nil, freshError(err)
	}
	return sqlstore.SchemaDiffs(have, want), nil
}

func freshError(err error) error {
	return fmt.Errorf("making the migrations' schema in a temporary one, to compare (the role needs the TEMPORARY privilege on the database): %w", err)
}

// describeSchema returns the definitions of the tables named, in the
// schema whose oid the SQL expression schema gives, and of what belongs
// to them, by object, as SchemaDiffs compares them. Names of objects are
// the same in any schema; the schema itself is taken out of indexes'
// definitions, which always name it (the temporary one as pg_temp).
func describeSchema(ctx context.Context, tx *sql.Tx, schema string, tables []string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `
		WITH ns AS (SELECT oid, CASE WHEN oid = pg_my_temp_schema() THEN 'pg_temp' ELSE quote_ident(nspname) END AS name FROM pg_namespace WHERE oid = `+schema+`),
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
			replace(pg_get_indexdef(x.indexrelid), ' ON ' || ns.name || '.', ' ON ') || CASE WHEN x.indisvalid THEN '' ELSE ' (invalid)' END
			FROM t JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid, ns
		UNION ALL SELECT 'constraint ' || n.conname || ' of table ' || n.conrelid::regclass, pg_get_constraintdef(n.oid)
			FROM pg_constraint n WHERE n.conrelid IN (SELECT oid FROM t) OR n.confrelid IN (SELECT oid FROM t)
		UNION ALL SELECT 'sequence of column ' || a.attname || ' of table ' || t.relname,
			format_type(s.seqtypid, NULL) || ' from ' || s.seqstart || ' by ' || s.seqincrement || ' in ' || s.seqmin || ' to ' || s.seqmax
			|| ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
			FROM t JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
			JOIN pg_sequence s ON s.seqrelid = d.objid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid`, tables)
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
		objects[name] = def
	}
	return objects, rows.Err()
}
