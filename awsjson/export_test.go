package awsjson

import (
	"maps"
	"slices"
)

// OperationNames lists the names of the model's operations, sorted.
func OperationNames() []string {
	return slices.Sorted(maps.Keys(operations))
}
