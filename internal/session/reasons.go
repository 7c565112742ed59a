package session

// Reasons carried by events and notifications: OpenVidu's own strings, which clients and webhook
// receivers compare against.
const (
	ReasonDisconnect              = "disconnect" // the participant left (leaveRoom)
	ReasonNetworkDisconnect       = "networkDisconnect"
	ReasonUnpublish               = "unpublish"
	ReasonUnsubscribe             = "unsubscribe"
	ReasonForceDisconnectByUser   = "forceDisconnectByUser"
	ReasonForceDisconnectByServer = "forceDisconnectByServer"
	ReasonForceUnpublishByUser    = "forceUnpublishByUser"
	ReasonForceUnpublishByServer  = "forceUnpublishByServer"
	ReasonSessionClosedByServer   = "sessionClosedByServer"
	ReasonLastParticipantLeft     = "lastParticipantLeft"
	ReasonServerStopped           = "openviduServerStopped"
	// ReasonNodeCrashed: the cluster node that held the participant was lost (OpenVidu PRO's
	// reason when a media node crashes).
	ReasonNodeCrashed = "nodeCrashed"
)
