// Package demo is what `make demo` runs on a local stack: two demo handlers
// that fail on purpose, the reset and setup of a demo database (tenants and
// actions), a Standard Webhooks receiver that checks every signature, a load
// generator on the real publisher, and the summary queries that tell an
// operator what landed where.
//
// It is for the demo only: nothing in a production path imports it, and the
// worker registers its handlers only when started with --demo-handlers.
// Reset refuses any database whose name does not contain "demo" and any key
// prefix that does not either, so it cannot wipe a real deployment by mistake.
package demo
