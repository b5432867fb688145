//! The gateway agent (`agilekit gateway`) against real WireGuard: wireguard-go in network namespaces.
