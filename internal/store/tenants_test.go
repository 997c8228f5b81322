package store_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/internal/store"
)

func TestCreateTenantCopiesTemplate(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	schema, err := store.CreateTenant(ctx, pool, "acme_1")
	require.NoError(t, err)
	require.Equal(t, "tenant_acme_1", schema)

	// Same shape as the template: columns, checks, indexes, FKs, triggers,
	// once names are made schema-neutral.
	neutral := func(lines []string, s string) []string {
		out := make([]string, len(lines))
		for i, l := range lines {
			out[i] = strings.ReplaceAll(l, s, "S")
		}
		return out
	}
	tmpl := neutral(snapshot(t, ctx, pool, event.TemplateSchema), event.TemplateSchema)
	got := neutral(snapshot(t, ctx, pool, schema), schema)
	if diff := cmp.Diff(shapes(tmpl), shapes(got)); diff != "" {
		t.Fatalf("tenant schema differs from tenant_template (-template +tenant):\n%s", diff)
	}

	// Foreign keys point into the new schema, not the template.
	var ref string
	require.NoError(t, pool.QueryRow(ctx, `SELECT confrelid::regclass::text FROM pg_constraint
		WHERE conrelid = 'tenant_acme_1.action_executions'::regclass AND contype = 'f'
		AND conname LIKE '%event_id%'`).Scan(&ref))
	require.Equal(t, "tenant_acme_1.events", ref)

	// The updated_at trigger fires in the new schema.
	e := mkEvent(t, schema, "users.created", event.Now())
	_, err = store.InsertEvents(ctx, pool, schema, []*event.Event{e})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "UPDATE tenant_acme_1.events SET updated_at = '2000-01-01' , error_message = 'x' WHERE id = $1", e.ID)
	require.NoError(t, err)
	got1, err := store.GetEvent(ctx, pool, schema, e.ID)
	require.NoError(t, err)
	require.True(t, got1.UpdatedAt.Year() > 2000, "trigger must overwrite updated_at")

	_, err = store.CreateTenant(ctx, pool, "acme_1")
	require.ErrorIs(t, err, store.ErrTenantExists)

	schemas, err := store.ListSchemas(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", "tenant_acme_1"}, schemas)
}

// shapes drops the auto-generated names LIKE gives copied indexes, keeping
// what each index and constraint does.
func shapes(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if strings.HasPrefix(l, "index ") {
			_, def, _ := strings.Cut(l, ": ")
			_, on, _ := strings.Cut(def, " ON ")
			l = "index ON " + on
		}
		// LIKE renames the constraint behind a copied unique index.
		if head, def, ok := strings.Cut(l, ": UNIQUE "); ok && strings.HasPrefix(l, "constraint ") {
			l = head[:strings.LastIndex(head, ".")] + ".<unique>: UNIQUE " + def
		}
		out = append(out, l)
	}
	sortStrings(out)
	return out
}

func TestListSchemasSkipsOthers(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	_, err := pool.Exec(ctx, `
		CREATE SCHEMA "tenant_Bad"; CREATE TABLE "tenant_Bad".events (id uuid);
		CREATE SCHEMA tenant_noevents;
		CREATE SCHEMA other; CREATE TABLE other.events (id uuid);`)
	require.NoError(t, err)
	b := newTenant(t, ctx, pool)
	z, err := store.CreateTenant(ctx, pool, "zzz")
	require.NoError(t, err)
	schemas, err := store.ListSchemas(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, []string{"admin", b, z}, schemas)
}

var hostileSchemas = []struct{ name, schema string }{
	{"empty", ""},
	{"quote", `tenant_a"; DROP SCHEMA admin; --`},
	{"semicolon", "tenant_a;b"},
	{"pg_catalog", "pg_catalog"},
	{"public", "public"},
	{"template", "tenant_template"},
	{"upper case", "tenant_ACME"},
	{"over-long", "tenant_" + strings.Repeat("a", 51)},
	{"space", "tenant_a b"},
	{"dot", "admin.events"},
	{"no prefix", "acme"},
}

func TestCreateTenantRefusesHostileSlugs(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	slugs := []struct{ name, slug string }{
		{"empty", ""},
		{"quote", `a"; DROP SCHEMA admin; --`},
		{"semicolon", "a;b"},
		{"upper case", "ACME"},
		{"over-long", strings.Repeat("a", 51)},
		{"template", "template"},
		{"dash", "a-b"},
		{"unicode", "ácme"},
	}
	for _, tc := range slugs {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.CreateTenant(ctx, pool, tc.slug)
			require.ErrorIs(t, err, event.ErrInvalidSchema)
		})
	}
	// Nothing reached the database.
	schemas, err := store.ListSchemas(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, []string{"admin"}, schemas)
}

func TestRepositoryRefusesHostileSchemas(t *testing.T) {
	ctx, pool := migratedDB(t)
	t.Parallel()
	ops := map[string]func(schema string) error{
		"InsertEvents": func(s string) error {
			_, err := store.InsertEvents(ctx, pool, s, []*event.Event{{}})
			return err
		},
		"GetEvent": func(s string) error { _, err := store.GetEvent(ctx, pool, s, uuid.New()); return err },
		"GetEvents": func(s string) error {
			_, err := store.GetEvents(ctx, pool, s, []uuid.UUID{uuid.New()})
			return err
		},
		"ListEvents":     func(s string) error { _, _, err := store.ListEvents(ctx, pool, s, store.Filter{}); return err },
		"CausalityChain": func(s string) error { _, err := store.CausalityChain(ctx, pool, s, uuid.New()); return err },
		"UpdateStatuses": func(s string) error {
			return store.UpdateStatuses(ctx, pool, s, []store.StatusUpdate{{ID: uuid.New(), Status: event.StatusCompleted}})
		},
		"UpsertMissing": func(s string) error {
			_, err := store.UpsertMissing(ctx, pool, s, []*event.Event{{}})
			return err
		},
		"InsertOutbox": func(s string) error {
			return store.InsertOutbox(ctx, pool, uuid.New(), s, []uuid.UUID{uuid.New()})
		},
	}
	for _, tc := range hostileSchemas {
		for name, op := range ops {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				require.ErrorIs(t, op(tc.schema), event.ErrInvalidSchema)
			})
		}
	}
	// And the database is intact.
	schemas, err := store.ListSchemas(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, []string{"admin"}, schemas)
}
