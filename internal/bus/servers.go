package bus

// ServerURLs returns the URLs of the NATS servers this connection knows: those it
// was given and those the servers announced (the other members of a cluster).
func (b *Bus) ServerURLs() []string { return b.nc.Servers() }
