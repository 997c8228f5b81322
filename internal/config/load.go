package config

import (
	"errors"
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

// explain turns mapstructure's errors into KeyErrors where it can name the key.
func explain(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "has invalid keys: "); i >= 0 {
		keys := strings.TrimSpace(msg[i+len("has invalid keys: "):])
		return &KeyError{Key: keys, Reason: "unknown key; see configs/worker.yaml for the known ones"}
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		return &KeyError{Key: de.Name(), Reason: de.Unwrap().Error()}
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}
