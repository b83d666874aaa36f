package kafka

import (
	"errors"
	"hash/fnv"
	"net"
	"strconv"
	"strings"

	"github.com/ledgermq/ledgermq/broker/service"
	"github.com/ledgermq/ledgermq/wire"
)

// Kafka error codes used here (org.apache.kafka.common.protocol.Errors).
const (
	errUnknownServer          int16 = -1
	errNone                   int16 = 0
	errOffsetOutOfRange       int16 = 1
	errCorruptMessage         int16 = 2
	errUnknownTopicOrPart     int16 = 3
	errLeaderNotAvailable     int16 = 5
	errNotLeader              int16 = 6
	errRequestTimedOut        int16 = 7
	errMessageTooLarge        int16 = 10
	errCoordinatorLoading     int16 = 14
	errCoordinatorNotAvail    int16 = 15
	errNotCoordinator         int16 = 16
	errInvalidTopic           int16 = 17
	errRecordListTooLarge     int16 = 18
	errIllegalGeneration      int16 = 22
	errInconsistentProtocol   int16 = 23
	errInvalidGroupID         int16 = 24
	errUnknownMemberID        int16 = 25
	errInvalidSessionTimeout  int16 = 26
	errRebalanceInProgress    int16 = 27
	errTopicAuthFailed        int16 = 29
	errGroupAuthFailed        int16 = 30
	errClusterAuthFailed      int16 = 31
	errUnsupportedSASLMech    int16 = 33
	errIllegalSASLState       int16 = 34
	errUnsupportedVersion     int16 = 35
	errTopicAlreadyExists     int16 = 36
	errInvalidPartitions      int16 = 37
	errInvalidReplication     int16 = 38
	errInvalidConfig          int16 = 40
	errInvalidRequest         int16 = 42
	errPolicyViolation        int16 = 44
	errOutOfOrderSequence     int16 = 45
	errDuplicateSequence      int16 = 46
	errInvalidProducerEpoch   int16 = 47
	errTransactionalIDAuth    int16 = 53
	errKafkaStorage           int16 = 56
	errSASLAuthFailed         int16 = 58
	errUnknownProducerID      int16 = 59
	errNonEmptyGroup          int16 = 68
	errGroupIDNotFound        int16 = 69
	errFencedLeaderEpoch      int16 = 74
	errUnknownLeaderEpoch     int16 = 75
	errMemberIDRequired       int16 = 79
	errGroupMaxSizeReached    int16 = 81
	errInvalidRecord          int16 = 87
	errThrottlingQuotaExceed  int16 = 89
	errUnsupportedCompression int16 = 76
)

// authFailed is the authorization error for the kind of resource a
// request touches.
type resourceKind int

const (
	onTopic resourceKind = iota
	onGroup
	onCluster
)

// codeFor maps a service error to a Kafka error code and message.
func codeFor(svc *service.Service, err error, kind resourceKind) (int16, string) {
	if err == nil {
		return errNone, ""
	}
	switch {
	case errors.Is(err, errOldFormat):
		return errUnsupportedVersion, err.Error()
	case errors.Is(err, errTransactional):
		return errInvalidRecord, err.Error()
	case errors.Is(err, errTooLarge):
		return errMessageTooLarge, err.Error()
	case errors.Is(err, errCorrupt):
		return errCorruptMessage, err.Error()
	}
	ae := svc.AsError(err)
	switch ae.Code {
	case wire.CodeTopicNotFound, wire.CodeQueueNotFound:
		return errUnknownTopicOrPart, ae.Message
	case wire.CodeTopicExists:
		return errTopicAlreadyExists, ae.Message
	case wire.CodeInvalidArgument:
		if kind == onGroup {
			return errInvalidGroupID, ae.Message
		}
		return errInvalidRequest, ae.Message
	case wire.CodeMalformedBatch:
		return errCorruptMessage, ae.Message
	case wire.CodeMessageTooLarge, wire.CodeCommandTooLarge:
		return errMessageTooLarge, ae.Message
	case wire.CodeRequestTooLarge:
		return errRecordListTooLarge, ae.Message
	case wire.CodeOffsetOutOfRange:
		return errOffsetOutOfRange, ae.Message
	case wire.CodeNotLeader:
		if kind == onGroup {
			return errNotCoordinator, ae.Message
		}
		return errNotLeader, ae.Message
	case wire.CodeUnavailable, wire.CodeOverloaded:
		if kind == onGroup {
			return errCoordinatorNotAvail, ae.Message
		}
		if !ae.NotApplied {
			return errRequestTimedOut, ae.Message // outcome unknown: retriable
		}
		return errLeaderNotAvailable, ae.Message
	case wire.CodeDiskFull:
		return errKafkaStorage, ae.Message
	case wire.CodeUnknownProducer:
		return errUnknownProducerID, ae.Message
	case wire.CodeOutOfOrderSequence:
		return errOutOfOrderSequence, ae.Message
	case wire.CodeDuplicateSequence:
		return errDuplicateSequence, ae.Message
	case wire.CodeTooManyTopics, wire.CodeTooManyQueues, wire.CodeTooManyGroups:
		return errPolicyViolation, ae.Message
	case wire.CodeTooManyMembers:
		return errGroupMaxSizeReached, ae.Message
	case wire.CodeUnauthenticated:
		return errSASLAuthFailed, ae.Message
	case wire.CodeForbidden:
		switch kind {
		case onGroup:
			return errGroupAuthFailed, ae.Message
		case onCluster:
			return errClusterAuthFailed, ae.Message
		}
		return errTopicAuthFailed, ae.Message
	case wire.CodeGroupNotFound:
		return errGroupIDNotFound, ae.Message
	case wire.CodeGroupActive:
		if kind == onGroup {
			return errInconsistentProtocol, ae.Message
		}
		return errNonEmptyGroup, ae.Message
	case wire.CodeUnknownMember:
		return errUnknownMemberID, ae.Message
	case wire.CodeIllegalGeneration:
		return errIllegalGeneration, ae.Message
	}
	return errUnknownServer, ae.Message
}

// nodeID maps a LedgerMQ node id to Kafka's int32 broker id, the same on
// every node: "n3" and "3" are 3; other ids hash (FNV-1a, 31 bits, offset
// past 1<<20 so they cannot meet a numbered one).
func nodeID(id string) int32 {
	digits := strings.TrimPrefix(id, "n")
	if v, err := strconv.ParseInt(digits, 10, 32); err == nil && v >= 0 && v < 1<<20 {
		return int32(v)
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32()%(1<<31-1<<20)) + 1<<20
}

// splitHostPort splits an advertised address; ok false when it has no
// numeric port.
func splitHostPort(addr string) (string, int32, bool) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return h, int32(port), true
}

func strp(s string) *string { return &s }
