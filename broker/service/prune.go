package service

import "time"

// pruneEvery is how often the topics' batch indexes drop the batches
// whose log entries retention has deleted.
const pruneEvery = time.Second

// pruneIndexes keeps every queue's batch index to the retained log: once
// retention deletes segments, the references into them are dropped
// (topics.State.Prune), so memory and snapshots track the retained data,
// not all history. Each node prunes by its own log's first index.
func (s *Service) pruneIndexes() {
	defer s.wg.Done()
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if n := s.topics.Prune(s.node.FirstIndex()); n > 0 {
			s.logger.Debug("pruned batch index", "references", n, "first_index", s.node.FirstIndex())
		}
	}
}

// IndexedBatches is how many batch references the queue indexes hold (a
// gauge: it tracks the retained data).
func (s *Service) IndexedBatches() int { return s.topics.Batches() }
