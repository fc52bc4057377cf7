package nft

// EncodeElements exposes the element encoding to the external kernel tests,
// which compare it with what the kernel lists.
var EncodeElements = elements
