package cluster

// Member returns one member by name, without copying the whole view: the
// node layer asks this for every frame it routes.
func (c *Cluster) Member(name string) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[name]
	if !ok {
		return Member{}, false
	}
	return m.clone(), true
}

// IsUp reports whether name is an alive or suspect member. It does not
// allocate.
func (c *Cluster) IsUp(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[name]
	return ok && m.Status.Up()
}
