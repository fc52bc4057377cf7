package render

import "github.com/palisade-dev/palisade/dataplane/verdictlog"

// Defaults of verdict logging (the group is verdictlog.DefaultGroup).
const (
	// DefaultLogRate is how many packets per second each log rule (one per
	// policy and direction that allows, one per group that drops or audits)
	// sends at most, after DefaultLogBurst.
	DefaultLogRate uint32 = 50
	// DefaultLogBurst is how many packets a log rule sends at once before
	// the rate applies.
	DefaultLogBurst uint32 = 100
)

// Options configure Render.
type Options struct {
	// Table is the name of the inet table; "" means TableName.
	Table string
	Log   LogOptions
}

// LogOptions configure verdict logging. The zero value logs with the
// defaults.
type LogOptions struct {
	// Disabled renders no log rules at all (the pre-logging ruleset).
	Disabled bool
	// Group is the NFLOG group; 0 means verdictlog.DefaultGroup.
	Group uint16
	// Rate is the packets per second each log rule sends; 0 means
	// DefaultLogRate.
	Rate uint32
	// Burst is the burst of each log rule; 0 means DefaultLogBurst.
	Burst uint32
}

// Option changes Options.
type Option func(*Options)

// WithLog sets the logging options.
func WithLog(l LogOptions) Option { return func(o *Options) { o.Log = l } }

// WithTable names the inet table the ruleset goes to (default TableName).
func WithTable(name string) Option { return func(o *Options) { o.Table = name } }

// WithoutLog disables verdict logging.
func WithoutLog() Option { return func(o *Options) { o.Log.Disabled = true } }

// Resolve applies opts to the defaults and fills in the zero values.
func Resolve(opts ...Option) Options {
	var o Options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.Table == "" {
		o.Table = TableName
	}
	if o.Log.Group == 0 {
		o.Log.Group = verdictlog.DefaultGroup
	}
	if o.Log.Rate == 0 {
		o.Log.Rate = DefaultLogRate
	}
	if o.Log.Burst == 0 {
		o.Log.Burst = DefaultLogBurst
	}
	return o
}
