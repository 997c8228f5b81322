package event_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/neo-events/neo-events/event"
)

func ExampleNew() {
	agg := uuid.MustParse("0190a6f2-1111-7abc-8def-000000000002")
	e, err := event.New("tenant_acme", "users.created", "user", agg, json.RawMessage(`{"email":"ada@example.com"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.ID.Version(), e.Status, e.Priority, e.MaxRetries)

	entry, err := e.Entry()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(entry["event_type"], entry["schema"], entry["aggregate_id"], entry["event_data"])

	back, err := event.DecodeEntry(entry)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(back.ID == e.ID, back.CreatedAt.Equal(e.CreatedAt))
	// Output:
	// VERSION_7 pending normal 3
	// users.created tenant_acme 0190a6f2-1111-7abc-8def-000000000002 {"email":"ada@example.com"}
	// true true
}

func ExampleDecodeEntry_invalid() {
	_, err := event.DecodeEntry(map[string]string{
		"id":             "0190a6f2-1111-7abc-8def-000000000001",
		"event_type":     "users.created",
		"schema":         "tenant_acme",
		"aggregate_id":   "not-a-uuid",
		"aggregate_type": "user",
		"event_data":     "{}",
	})
	var fe *event.FieldError
	fmt.Println(errors.Is(err, event.ErrInvalid), errors.As(err, &fe) && fe.Field == "aggregate_id")
	fmt.Println(err)
	// Output:
	// true true
	// invalid event: aggregate_id: not a UUID in canonical form: "not-a-uuid"
}

func ExampleParsePattern() {
	for _, pattern := range []string{"*", "users.*", "*.created", "users.created", "users"} {
		p, err := event.ParsePattern(pattern)
		if err != nil {
			fmt.Printf("%-13s refused\n", pattern)
			continue
		}
		fmt.Printf("%-13s users.created=%t orders.created=%t users.deleted=%t\n",
			p, p.Match("users.created"), p.Match("orders.created"), p.Match("users.deleted"))
	}
	// Output:
	// *             users.created=true orders.created=true users.deleted=true
	// users.*       users.created=true orders.created=false users.deleted=true
	// *.created     users.created=true orders.created=true users.deleted=false
	// users.created users.created=true orders.created=false users.deleted=false
	// users         refused
}

func ExampleValidateSchema() {
	for _, schema := range []string{"admin", "tenant_acme", "tenant_template", "public", `tenant_x"; DROP SCHEMA admin; --`} {
		err := event.ValidateSchema(schema)
		fmt.Printf("%-35q ok=%t\n", schema, err == nil)
	}
	fmt.Println(event.QuoteIdent("tenant_acme"))
	// Output:
	// "admin"                             ok=true
	// "tenant_acme"                       ok=true
	// "tenant_template"                   ok=false
	// "public"                            ok=false
	// "tenant_x\"; DROP SCHEMA admin; --" ok=false
	// "tenant_acme"
}
