package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/ledgermq/ledgermq/wire"
)

// producerID returns the producer id to use, fetching a new one when there
// is none yet or the current one is stale (the broker no longer knows it).
func (p *Producer) producerID(ctx context.Context, stale uint64) (uint64, error) {
	for {
		p.pidMu.Lock()
		if p.pid != 0 && p.pid != stale {
			pid := p.pid
			p.pidMu.Unlock()
			return pid, nil
		}
		if w := p.pidWait; w != nil {
			p.pidMu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return 0, fmt.Errorf("ledgermq: producer id: %w", ctx.Err())
			}
		}
		w := make(chan struct{})
		p.pidWait = w
		p.pidMu.Unlock()
		// An id whose answer was lost is merely unused: resend freely.
		var r wire.InitProducerResponse
		err := p.conn.postJSON(ctx, "/v1/producers", nil, &r, retryAll)
		if err == nil && r.ProducerID == 0 {
			err = errors.New("the broker answered producer id 0")
		}
		p.pidMu.Lock()
		p.pidWait = nil
		close(w)
		if err == nil {
			p.pid = r.ProducerID
		}
		p.pidMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("ledgermq: producer id: %w", err)
		}
		p.log.Info("ledgermq: producer id", "producer_id", r.ProducerID, "previous", stale)
		return r.ProducerID, nil
	}
}
