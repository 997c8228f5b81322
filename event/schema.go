package event

import (
	"fmt"
	"strings"
)

// Schema names of the platform (DESIGN §1).
const (
	AdminSchema    = "admin"
	TemplateSchema = "tenant_template"
	TenantPrefix   = "tenant_"
	MaxSlugLen     = 50
)

// Scopes name the stream family of a schema (DESIGN §2).
const (
	ScopeAdmin   = "admin"
	ScopeTenants = "tenants"
)

// ValidateSlug checks a tenant slug against `[a-z0-9_]{1,50}`.
func ValidateSlug(slug string) error {
	if slug == "" {
		return fmt.Errorf("%w: tenant slug is empty", ErrInvalidSchema)
	}
	if len(slug) > MaxSlugLen {
		return fmt.Errorf("%w: tenant slug %q is longer than %d characters", ErrInvalidSchema, truncate(slug), MaxSlugLen)
	}
	for i := 0; i < len(slug); i++ {
		c := slug[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("%w: tenant slug %q may contain only a-z, 0-9 and _", ErrInvalidSchema, truncate(slug))
		}
	}
	if slug == "template" {
		return fmt.Errorf("%w: %q is the template schema, not a tenant", ErrInvalidSchema, TemplateSchema)
	}
	return nil
}

// ValidateSchema accepts exactly the schemas that hold events: `admin` and
// `tenant_<slug>`. Everything else (quotes, semicolons, `public`,
// `pg_catalog`, upper case, over-long names, the template) is refused, so a
// schema name that passes is safe to quote into SQL.
func ValidateSchema(schema string) error {
	if schema == AdminSchema {
		return nil
	}
	if schema == "" {
		return fmt.Errorf("%w: schema is empty", ErrInvalidSchema)
	}
	slug, ok := strings.CutPrefix(schema, TenantPrefix)
	if !ok {
		return fmt.Errorf("%w: %q is neither %q nor %s<slug>", ErrInvalidSchema, truncate(schema), AdminSchema, TenantPrefix)
	}
	return ValidateSlug(slug)
}

// TenantSchema returns the schema name for a tenant slug.
func TenantSchema(slug string) (string, error) {
	if err := ValidateSlug(slug); err != nil {
		return "", err
	}
	return TenantPrefix + slug, nil
}

// ScopeOf returns the stream scope of a valid schema: `admin` or `tenants`.
func ScopeOf(schema string) string {
	if schema == AdminSchema {
		return ScopeAdmin
	}
	return ScopeTenants
}

// QuoteIdent quotes a validated identifier for SQL text. Callers validate
// first; quoting is the second line of defence.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
