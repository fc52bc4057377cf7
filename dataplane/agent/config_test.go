package agent

import (
	"strings"
	"testing"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{NodeName: "n"}
	c.Defaults()
	if c.MinInterval != DefaultMinInterval || c.MaxInterval != DefaultMaxInterval {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaulted config: %v", err)
	}
	err := Config{MinInterval: -1, MaxInterval: -2}.Validate()
	for _, want := range []string{"NodeName", "MinInterval", "MaxInterval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
}
