package audit

import (
	"context"
	"hash/maphash"

	"github.com/openpca/openpca"
)

// Generate makes report r once, as a worker of a generator of cfg would,
// without the workers, and returns what the report's row would keep of
// its failure.
func Generate(ctx context.Context, cfg GeneratorConfig, r *openpca.AuditReport) (failure string, err error) {
	g := &Generator{cfg: cfg, seed: maphash.MakeSeed()}
	if _, _, err = g.generate(ctx, r, nil); err != nil {
		failure = reportFailure(err)
	}
	return failure, err
}
