package config

import (
	"fmt"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every environment variable: NEO_EVENTS_WORKER_GROUP
// sets worker.group.
const EnvPrefix = "NEO_EVENTS"

// defaults lists every scalar key with its default, so that viper binds the
// matching environment variable and flags.
func defaults() map[string]any {
	d := Default()
	return map[string]any{
		"redis.url":               d.Redis.URL,
		"redis.cluster_addrs":     d.Redis.ClusterAddrs,
		"postgres.url":            d.Postgres.URL,
		"streams.prefix":          d.Streams.Prefix,
		"streams.partitions":      d.Streams.Partitions,
		"worker.group":            d.Worker.Group,
		"worker.consumer":         d.Worker.Consumer,
		"worker.subscriptions":    d.Worker.Subscriptions,
		"worker.concurrency":      d.Worker.Concurrency,
		"worker.batch_size":       d.Worker.BatchSize,
		"worker.block":            d.Worker.Block,
		"worker.claim_min_idle":   d.Worker.ClaimMinIdle,
		"worker.claim_interval":   d.Worker.ClaimInterval,
		"worker.shutdown_timeout": d.Worker.ShutdownTimeout,
		"worker.update_status":    d.Worker.UpdateStatus,
		"retry.max_attempts":      d.Retry.MaxAttempts,
		"retry.initial_interval":  d.Retry.InitialInterval,
		"retry.multiplier":        d.Retry.Multiplier,
		"retry.max_interval":      d.Retry.MaxInterval,
		"retry.jitter":            d.Retry.Jitter,
		"http.addr":               d.HTTP.Addr,
		"http.pprof":              d.HTTP.Pprof,
		"log.level":               d.Log.Level,
		"log.format":              d.Log.Format,
		"publisher.notify":        d.Publisher.Notify,
		"outbox.interval":         d.Outbox.Interval,
		"outbox.min_age":          d.Outbox.MinAge,
	}
}

// Keys returns every scalar configuration key.
func Keys() []string {
	keys := make([]string, 0, 32)
	for k := range defaults() {
		keys = append(keys, k)
	}
	return keys
}

// Load reads the configuration: defaults, then the YAML/JSON/TOML file at
// path (optional: "" skips it), then NEO_EVENTS_* environment variables, then
// the flags in fs whose names are configuration keys (for example
// --worker.group). Unknown keys in the file and invalid values are refused
// with the key named.
func Load(path string, fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("read config file %s: %w", path, err)
		}
	}
	if fs != nil {
		var bindErr error
		fs.VisitAll(func(f *pflag.Flag) {
			if _, ok := defaults()[f.Name]; ok && bindErr == nil {
				bindErr = v.BindPFlag(f.Name, f)
			}
		})
		if bindErr != nil {
			return Config{}, fmt.Errorf("bind flags: %w", bindErr)
		}
	}
	var c Config
	err := v.Unmarshal(&c, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return Config{}, explain(err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// explain turns mapstructure's errors into a KeyError naming the full key
// (worker.bogus, handlers[0].extra); mapstructure names only the section.
func explain(err error) error {
	var unknown []string
	var first *mapstructure.DecodeError
	walkDecodeErrors(err, func(de *mapstructure.DecodeError) {
		inner := de.Unwrap().Error()
		if keys, ok := strings.CutPrefix(inner, "has invalid keys: "); ok {
			for _, k := range strings.Split(keys, ", ") {
				unknown = append(unknown, joinKey(de.Name(), k))
			}
		} else if first == nil {
			first = de
		}
	})
	switch {
	case len(unknown) > 0:
		reason := "unknown key; see configs/worker.yaml for the known ones"
		if len(unknown) > 1 {
			reason += "; also unknown: " + strings.Join(unknown[1:], ", ")
		}
		return &KeyError{Key: unknown[0], Reason: reason}
	case first != nil:
		return &KeyError{Key: first.Name(), Reason: first.Unwrap().Error()}
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// walkDecodeErrors calls fn for every DecodeError in err's tree (mapstructure
// joins one error per bad key), outermost first.
func walkDecodeErrors(err error, fn func(*mapstructure.DecodeError)) {
	if de, ok := err.(*mapstructure.DecodeError); ok {
		fn(de)
		return
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkDecodeErrors(e, fn)
		}
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			walkDecodeErrors(e, fn)
		}
	}
}

// joinKey prefixes key with its section; mapstructure names the root by its
// Go type rather than "".
func joinKey(section, key string) string {
	if section == "" || section == "config.Config" {
		return key
	}
	return section + "." + key
}
