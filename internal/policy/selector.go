package policy

import (
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// selectorCache converts each distinct LabelSelector once per Compute:
// conversion validates every key and value with regular expressions, and
// the same few selectors (an app label, a namespace name) recur in most
// policies.
type selectorCache map[string]cachedSelector

type cachedSelector struct {
	sel labels.Selector
	err error
}

func (c selectorCache) convert(ls *metav1.LabelSelector) (labels.Selector, error) {
	key := selectorKey(ls)
	if s, ok := c[key]; ok {
		return s.sel, s.err
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	c[key] = cachedSelector{sel, err}
	return sel, err
}

// selectorKey spells out a selector's content unambiguously: matchLabels
// sorted by key (a map has no order), expressions in spec order (the first
// malformed one names the conversion error).
func selectorKey(ls *metav1.LabelSelector) string {
	var b strings.Builder
	keys := make([]string, 0, len(ls.MatchLabels))
	for k := range ls.MatchLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		writeField(&b, k)
		writeField(&b, ls.MatchLabels[k])
	}
	b.WriteByte('|')
	for _, e := range ls.MatchExpressions {
		writeField(&b, e.Key)
		writeField(&b, string(e.Operator))
		b.WriteString(strconv.Itoa(len(e.Values)))
		for _, v := range e.Values {
			writeField(&b, v)
		}
	}
	return b.String()
}

// writeField writes a length-prefixed string, so that no two selectors
// share a key whatever bytes their labels hold.
func writeField(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}
