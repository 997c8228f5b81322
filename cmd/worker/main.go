// Command worker is a neo-events fleet member with the built-in handlers.
//
//	worker --config configs/worker.yaml
package main

import (
	"github.com/neo-events/neo-events/handler"
	"github.com/neo-events/neo-events/worker"
)

func main() { worker.Main(handler.NewRegistry()) }
