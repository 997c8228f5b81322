package event_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neo-events/neo-events/event"
)

// AppendTime's direct path must write exactly what time.Format writes with
// TimeLayout, and fall back to it where the layout's four-digit year ends.
func TestAppendTimeMatchesFormat(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	for _, tc := range []struct {
		name string
		t    time.Time
	}{
		{"zero", time.Time{}},
		{"epoch", time.Unix(0, 0)},
		{"typical", time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)},
		{"nanoseconds", time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"one nanosecond", time.Date(2024, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"other zone", time.Date(2024, 1, 1, 2, 0, 0, 5000, east)},
		{"year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"year 0", time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC)},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"negative year", time.Date(-42, 3, 4, 5, 6, 7, 8, time.UTC)},
		{"leap day", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"with monotonic reading", time.Now()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.t.UTC().Format(event.TimeLayout)
			require.Equal(t, want, string(event.AppendTime(nil, tc.t)))
			require.Equal(t, "x"+want, string(event.AppendTime([]byte("x"), tc.t)))
			require.Equal(t, want, event.FormatTime(tc.t))
		})
	}
}

// FuzzAppendTime compares AppendTime with time.Format over any instant.
func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1714979289), int64(123456000))
	f.Add(int64(253402300799), int64(999999999)) // 9999-12-31T23:59:59
	f.Add(int64(-62135596800), int64(0))         // 0001-01-01
	f.Add(int64(-62167219200-86400), int64(1))   // year -1
	f.Add(int64(253402300800), int64(0))         // 10000-01-01
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		if got, want := string(event.AppendTime(nil, tm)), tm.UTC().Format(event.TimeLayout); got != want {
			t.Fatalf("AppendTime(%d, %d) = %q, time.Format gives %q", sec, nsec, got, want)
		}
	})
}

// FuzzParseTime: ParseTime's fast path for TimeLayout gives what the
// general path gives, for every string: the same time or a refusal.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2024-05-06T07:08:09.123456789Z", "0001-01-01T00:00:00.000000000Z", "9999-12-31T23:59:59.999999999Z",
		"0000-06-01T00:00:00.000000000Z", "2024-02-29T00:00:00.000000000Z", "2023-02-29T00:00:00.000000000Z",
		"2024-04-31T00:00:00.000000000Z", "2024-13-01T00:00:00.000000000Z", "2024-05-06T24:00:00.000000000Z",
		"2024-05-06T23:60:00.000000000Z", "2024-05-06T23:59:60.000000000Z", "2024-05-06T07:08:09.12345678+Z",
		"2024-05-06T07:08:09.123456789z", "2024-05-06 07:08:09.123456789Z", "-024-05-06T07:08:09.123456789Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := event.ParseTime(s)
		want, werr := event.ParseTimeGeneral(s)
		if (err == nil) != (werr == nil) || !got.Equal(want) || got.Location() != want.Location() {
			t.Fatalf("%q: ParseTime %v (%v), general path %v (%v)", s, got, err, want, werr)
		}
	})
}

// Every day of three 400-year cycles (the calendar's period), among them
// the first and last TimeLayout can write, at a time of day that changes
// from day to day, parses as the general path parses it.
func TestParseTimeEveryDay(t *testing.T) {
	t.Parallel()
	for _, from := range []int{1, 1900, 9600} {
		end := time.Date(from+400, 1, 1, 0, 0, 0, 0, time.UTC)
		for d := time.Date(from, 1, 1, 0, 0, 0, 0, time.UTC); d.Before(end); d = d.AddDate(0, 0, 1) {
			at := d.Add(time.Duration(d.YearDay()+d.Year()) * 3_723_456_789 % (24 * time.Hour))
			s := event.FormatTime(at)
			got, err := event.ParseTime(s)
			require.NoError(t, err, s)
			want, err := event.ParseTimeGeneral(s)
			require.NoError(t, err, s)
			if !got.Equal(want) || got.Location() != want.Location() {
				t.Fatalf("%s: %v, general path %v", s, got, want)
			}
		}
	}
}
