package handlertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/neo-events/neo-events/event"
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/handlertest"
)

// exampleT stands in for the *testing.T a real test passes to Run;
// examples have none.
type exampleT struct{ testing.TB }

func (exampleT) Helper()                   {}
func (exampleT) Fatal(a ...any)            { panic(fmt.Sprint(a...)) }
func (exampleT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

func ExampleRun() {
	welcome := handler.HandlerFunc(func(ctx context.Context, req *handler.Request) error {
		var cfg struct{ Template string }
		if err := json.Unmarshal(req.Action.Config, &cfg); err != nil || cfg.Template == "" {
			return handler.Permanent(fmt.Errorf("config needs a template"))
		}
		return req.SetOutput(map[string]string{"template": cfg.Template})
	})
	ev, err := event.New("tenant_acme", "users.created", "user",
		uuid.MustParse("11111111-1111-4111-8111-111111111111"), json.RawMessage(`{"email":"a@example.com"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// In a test: handlertest.Run(t, welcome, ev, ...), with t's context and logger.
	t := exampleT{}
	ctx := handlertest.WithContext(context.Background())
	logger := handlertest.WithLogger(zap.NewNop())

	res := handlertest.Run(t, welcome, ev, ctx, logger, handlertest.WithConfig(map[string]string{"template": "hello"}))
	fmt.Println(res.Err, string(res.Output))

	res = handlertest.Run(t, welcome, ev, ctx, logger)
	fmt.Println(res.Err, res.Permanent)
	// Output:
	// <nil> {"template":"hello"}
	// permanent: config needs a template true
}
