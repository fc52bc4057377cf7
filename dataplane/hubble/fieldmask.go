package hubble

import (
	"errors"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// fieldMask is a GetFlowsRequest field mask as a tree of field names; a
// name with no children keeps the whole field.
type fieldMask map[protoreflect.Name]fieldMask

// newFieldMask compiles a field mask ("time", "source.pod_name"); nil or
// empty keeps every field.
func newFieldMask(fm *fieldmaskpb.FieldMask) (fieldMask, error) {
	if len(fm.GetPaths()) == 0 {
		return nil, nil
	}
	if !fm.IsValid(&flowpb.Flow{}) {
		return nil, errors.New("invalid field mask: " + strings.Join(fm.GetPaths(), ","))
	}
	root := fieldMask{}
	for _, p := range fm.GetPaths() {
		node := root
		for name := range strings.SplitSeq(p, ".") {
			child, ok := node[protoreflect.Name(name)]
			if !ok {
				child = fieldMask{}
				node[protoreflect.Name(name)] = child
			}
			node = child
		}
	}
	return root, nil
}

// apply returns a copy of f with only the masked fields; f itself, shared
// with other readers, is not modified.
func (m fieldMask) apply(f *flowpb.Flow) *flowpb.Flow {
	if m == nil {
		return f
	}
	out := &flowpb.Flow{}
	m.copy(f.ProtoReflect(), out.ProtoReflect())
	return out
}

func (m fieldMask) copy(src, dst protoreflect.Message) {
	fields := src.Descriptor().Fields()
	for name, sub := range m {
		fd := fields.ByName(name)
		if fd == nil || !src.Has(fd) {
			continue
		}
		if len(sub) == 0 || fd.Message() == nil || fd.IsList() || fd.IsMap() {
			dst.Set(fd, src.Get(fd))
			continue
		}
		sub.copy(src.Get(fd).Message(), dst.Mutable(fd).Message())
	}
}
