package replication

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ledgermq/ledgermq/commitlog"
)

// Why restore touches the log
//
// hashicorp/raft installs a snapshot on a follower that is behind the
// leader's first retained entry, then resumes replication right after the
// snapshot's index. With a log that is also the message store, that would
// leave a silent hole: every entry between the follower's old last index and
// the snapshot index would be missing on this node forever. So before the
// state machine restores, catchUp makes the local log hold, contiguously, the
// source's retained entries up to the snapshot index:
//
//  1. If the log already holds the snapshot's entry (same index and term),
//     it is consistent up to there (Raft's log matching property) and
//     nothing is done. This is the case at every restart.
//  2. Otherwise it finds a source peer (the leader first) whose log holds
//     that entry, keeps the longest local prefix that agrees with the
//     source (binary search on terms, again by log matching), removes the
//     rest, and copies entries from the source, each verified by CRC32C,
//     up to the snapshot index and no further.
//  3. If the log went further before (a stale tail), raft still believes
//     its old last index (it caches it and does not re-read it after a
//     restore), so every index up to there must exist. They are filled with
//     no-op entries of term 0. No real entry has term 0, so the first entry
//     the leader sends for any of those indexes conflicts, and raft's own
//     conflict handling truncates the fillers and stores the real entries;
//     a filler can never be committed, since the leader's commit index is
//     within its own log, which the real entries replace first. Copying a
//     source's entries beyond the snapshot instead would be unsafe: a
//     non-leader's uncommitted tail could match terms by accident and be
//     committed by raft without being compared.
//
// The copying runs inside FSM.Restore, so raft does not resume replication
// into the gap before it is filled. A crash part way is safe: the snapshot
// was saved before Restore ran, so the next start restores it again and
// catchUp continues from what the log holds.

const catchUpChunk = 4 << 20

func (n *Node) catchUp(index, term uint64) error {
	if n.hasEntry(index, term) {
		return nil
	}
	prevLast := n.log.LastIndex()
	n.logger.Info("log does not hold the snapshot's entry; copying from a peer",
		"snapshot_index", index, "snapshot_term", term, "first_index", n.log.FirstIndex(), "last_index", prevLast)
	deadline := time.Now().Add(n.cfg.RestoreTimeout)
	backoff := 50 * time.Millisecond
	for {
		var errs []error
		for _, src := range n.restoreSources() {
			err := n.catchUpFrom(src, index, term)
			if err == nil {
				return n.fillTo(prevLast, index)
			}
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			if errors.Is(err, commitlog.ErrFailed) || errors.Is(err, commitlog.ErrClosed) {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: entries up to %d (term %d): %w", ErrNoSource, index, term, errors.Join(errs...))
		}
		n.logger.Warn("no peer could supply the log yet; retrying", "snapshot_index", index, "err", errors.Join(errs...))
		select {
		case <-n.stop:
			return ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (n *Node) hasEntry(index, term uint64) bool {
	e, err := n.log.Read(index)
	return err == nil && e.Term == term
}

// restoreSources lists peer-protocol addresses to copy from: the leader
// first, then every other known member.
func (n *Node) restoreSources() []string {
	var out []string
	seen := map[string]bool{n.cfg.ID: true}
	add := func(id raft.ServerID, addr raft.ServerAddress) {
		if id == "" || seen[string(id)] {
			return
		}
		seen[string(id)] = true
		out = append(out, n.cfg.PeerAddr(id, addr))
	}
	if r := n.raft.Load(); r != nil {
		addr, id := r.LeaderWithID()
		add(id, addr)
	}
	for _, s := range n.serversCopy() {
		add(s.ID, s.Address)
	}
	return out
}

// fillTo appends term-0 no-op entries after index up to prevLast (see the
// comment at the top of this file).
func (n *Node) fillTo(prevLast, index uint64) error {
	if prevLast <= index || n.log.LastIndex() != index {
		return nil
	}
	var batch []commitlog.Entry
	for i := index + 1; i <= prevLast; i++ {
		batch = append(batch, commitlog.Entry{Index: i, Term: 0, Type: uint8(raft.LogNoop)})
		if len(batch) == 4096 || i == prevLast {
			if err := n.log.Append(batch); err != nil {
				return fmt.Errorf("fill stale tail: %w", err)
			}
			batch = batch[:0]
		}
	}
	n.logger.Info("filled the replaced tail with placeholders for raft to overwrite", "from", index+1, "to", prevLast)
	return nil
}

func (n *Node) catchUpFrom(addr string, index, term uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), peerIOTimeout)
	defer cancel()
	pc, err := dialPeerConn(ctx, n.mux, addr, n.cfg.Log.MaxEntrySize)
	if err != nil {
		return err
	}
	defer pc.Close()
	probe, err := pc.fetch(index, index, 1)
	if err != nil {
		return err
	}
	if len(probe.Entries) != 1 || probe.Entries[0].Term != term {
		return fmt.Errorf("source log [%d, %d] does not hold entry %d of term %d", probe.First, probe.Last, index, term)
	}
	keep, err := n.agreeingPrefix(pc, probe.First, index)
	if err != nil {
		return err
	}
	if keep >= n.log.FirstIndex() {
		if err := n.log.TruncateAfter(keep); err != nil {
			return fmt.Errorf("truncate local log after %d: %w", keep, err)
		}
	} else {
		n.logger.Warn("local log shares no prefix with the source; starting it over", "source", addr, "source_first", probe.First)
		if err := n.log.Reset(probe.First); err != nil {
			return fmt.Errorf("reset local log to %d: %w", probe.First, err)
		}
	}
	copied := 0
	for from := n.log.LastIndex() + 1; from <= index; {
		res, err := pc.fetch(from, index, catchUpChunk)
		if err != nil {
			return err
		}
		if len(res.Entries) == 0 {
			return fmt.Errorf("source returned no entries at %d (its log is [%d, %d])", from, res.First, res.Last)
		}
		if err := n.log.Append(res.Entries); err != nil {
			return fmt.Errorf("append copied entries: %w", err)
		}
		from += uint64(len(res.Entries))
		copied += len(res.Entries)
	}
	if !n.hasEntry(index, term) {
		return fmt.Errorf("after copying, entry %d of term %d is still missing", index, term)
	}
	n.logger.Info("log caught up from peer", "source", addr, "entries", copied,
		"first_index", n.log.FirstIndex(), "last_index", n.log.LastIndex())
	return nil
}

// agreeingPrefix returns the highest local index, at most upTo and at least
// the source's first, whose term matches the source's; entries up to it are
// identical on both (log matching). It returns 0 if there is none.
func (n *Node) agreeingPrefix(pc *peerConn, srcFirst, upTo uint64) (uint64, error) {
	lo := max(n.log.FirstIndex(), srcFirst)
	hi := min(n.log.LastIndex(), upTo)
	if lo > hi {
		return 0, nil
	}
	var ferr error
	matches := func(i uint64) bool {
		local, err := n.log.Read(i)
		if err != nil {
			ferr = err
			return false
		}
		res, err := pc.fetch(i, i, 1)
		if err != nil || len(res.Entries) != 1 {
			ferr = fmt.Errorf("probe entry %d: %w", i, err)
			return false
		}
		return local.Term == res.Entries[0].Term
	}
	// The first index that does not match; everything before it matches.
	k := sort.Search(int(hi-lo+1), func(i int) bool { return !matches(lo + uint64(i)) })
	if ferr != nil {
		return 0, ferr
	}
	if k == 0 {
		return 0, nil
	}
	return lo + uint64(k) - 1, nil
}
