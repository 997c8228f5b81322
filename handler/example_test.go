package handler_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neo-events/neo-events/handler"
)

func ExampleRegistry() {
	reg := handler.NewRegistry()
	// Middleware sees every handler's request first and its error last.
	reg.Use(func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, req *handler.Request) error {
			fmt.Println("before", req.Action.Name)
			err := next.Handle(ctx, req)
			fmt.Println("after", req.Action.Name, err)
			return err
		})
	})
	reg.MustRegister("welcome_email", handler.HandlerFunc(func(ctx context.Context, req *handler.Request) error {
		fmt.Println("sending welcome email")
		return nil
	}))
	err := reg.Register("welcome_email", handler.HandlerFunc(nil))
	fmt.Println(errors.Is(err, handler.ErrDuplicate))

	h, ok := reg.Lookup("welcome_email")
	fmt.Println(ok, reg.Names())
	_ = handler.Call(context.Background(), h, &handler.Request{Action: handler.Action{Name: "welcome"}})
	// Output:
	// true
	// true [welcome_email]
	// before welcome
	// sending welcome email
	// after welcome <nil>
}

func ExamplePermanent() {
	cause := errors.New("unknown template")
	err := handler.Permanent(fmt.Errorf("render: %w", cause))
	fmt.Println(handler.IsPermanent(err), errors.Is(err, cause))
	fmt.Println(err)
	// Output:
	// true true
	// permanent: render: unknown template
}

func ExampleRetryAfter() {
	err := handler.RetryAfter(30*time.Second, errors.New("rate limited"))
	d, ok := handler.RetryDelay(err)
	fmt.Println(d, ok, handler.IsPermanent(err))
	fmt.Println(err)
	// Output:
	// 30s true false
	// rate limited (retry after 30s)
}

func ExampleCall() {
	h := handler.HandlerFunc(func(ctx context.Context, req *handler.Request) error {
		var m map[string]int
		m["boom"]++ // a nil map write panics
		return nil
	})
	err := handler.Call(context.Background(), h, &handler.Request{})
	var pe *handler.PanicError
	fmt.Println(errors.As(err, &pe), handler.IsPermanent(err))
	fmt.Println(pe.Value)
	fmt.Println(handler.StackTrace(err) != "")
	// Output:
	// true false
	// assignment to entry in nil map
	// true
}

func ExampleRequest_SetOutput() {
	req := &handler.Request{}
	if err := req.SetOutput(map[string]int{"status_code": 200}); err != nil {
		fmt.Println(err)
	}
	fmt.Println(string(req.Output()))
	// Output:
	// {"status_code":200}
}
