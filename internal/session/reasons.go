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
)
