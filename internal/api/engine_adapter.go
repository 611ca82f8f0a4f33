package api

import (
	"context"
	"errors"

	"github.com/skyfleet/skyfleet/internal/descriptor"
	"github.com/skyfleet/skyfleet/internal/engine"
	"github.com/skyfleet/skyfleet/internal/store"
)

// engineAdapter presents the engine to the API, translating its error values and result
// types into the API's own.
type engineAdapter struct{ e *engine.Engine }

var _ Engine = engineAdapter{}

// EngineOf presents an engine to the API server. The server keeps its own small interface
// (Engine) so that its tests can use a fake; the daemon and end-to-end tests pass the real
// engine through this adapter.
func EngineOf(e *engine.Engine) Engine { return engineAdapter{e} }

func translate(err error) error {
	var nf *engine.NotFoundError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &nf):
		return &NotFoundError{Kind: nf.Kind, Name: nf.Name, InfraID: nf.InfraID}
	case errors.Is(err, engine.ErrAlreadyAttached):
		return ErrAlreadyAttached
	case errors.Is(err, engine.ErrNotAttached):
		return ErrNotAttached
	case errors.Is(err, engine.ErrDestroying):
		return ErrDestroying
	}
	return err
}

func (a engineAdapter) ImportNodeDefs(ctx context.Context, defs descriptor.NodeDefs, source string) ([]string, error) {
	names, err := a.e.ImportNodeDefs(ctx, defs, source)
	return names, translate(err)
}

func (a engineAdapter) Submit(ctx context.Context, id, file string, data []byte) (string, []Warning, error) {
	newID, warns, err := a.e.Submit(ctx, id, file, data)
	if err != nil {
		return "", nil, translate(err)
	}
	out := make([]Warning, 0, len(warns))
	for _, w := range warns {
		msg := w.Msg
		if w.Path != "" {
			msg = w.Path + ": " + w.Msg
		}
		out = append(out, Warning{Position: w.Pos.String(), Message: msg})
	}
	return newID, out, nil
}

func (a engineAdapter) Scale(ctx context.Context, req store.ScalingRequest) (ScaleResult, error) {
	r, err := a.e.Scale(ctx, req)
	if err != nil {
		return ScaleResult{}, translate(err)
	}
	return ScaleResult{Applied: r.Applied, Reason: r.Reason, From: r.From, Target: r.Target, Pending: r.Pending}, nil
}

func (a engineAdapter) Destroy(ctx context.Context, id string) error {
	return translate(a.e.Destroy(ctx, id))
}

func (a engineAdapter) WaitGone(ctx context.Context, id string) error {
	return translate(a.e.WaitGone(ctx, id))
}

func (a engineAdapter) Attach(ctx context.Context, id string) error {
	return translate(a.e.Attach(ctx, id))
}

func (a engineAdapter) Detach(ctx context.Context, id string) error {
	return translate(a.e.Detach(ctx, id))
}

func (a engineAdapter) Maintained(id string) bool { return a.e.Maintained(id) }
