mod compare;
mod conformance;
